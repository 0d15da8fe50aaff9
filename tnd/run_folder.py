"""The files of a run folder: their names, and the one atomic JSON write they all use.

``tnd-train`` writes ``summary.json`` (or, on failure, ``error.json``) and, for a run with
plugins, ``plugins.json`` (where each plugin module came from), ``tnd-eval``
writes ``eval.json``, ``tnd-table`` writes ``expert_summary.json`` in a sweep folder, and
the table reads them back. A JSON file is written to a temporary name and renamed, so a
reader never sees half a file. Standard library only: the table imports this without JAX.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"  # one JSON row per logged step
ERROR_FILE = "error.json"
EVAL_FILE = "eval.json"
EXPERT_FILE = "expert_summary.json"
PLUGINS_FILE = "plugins.json"  # {module: file it was imported from}, for runs with plugins=[...]


def _finite_or_none(value: Any) -> Any:
    """NaN/inf -> None (JSON null), recursively through dicts, lists and tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Writes ``data`` to ``path`` atomically (NaN -> null, other objects via ``str``)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_finite_or_none(data), indent=2, default=str) + "\n")
    tmp.replace(path)
    return path
