"""The files of a run folder: their names, and the one atomic JSON write they all use.

``tnd-train`` writes ``summary.json`` (or, on failure, ``error.json``) and, for a run with
plugins, ``plugins.json`` (where each plugin module came from), ``tnd-eval``
writes ``eval.json``, ``tnd-table`` writes ``expert_summary.json`` in a sweep folder, and
the table reads them back. A JSON file is written to a temporary name and renamed, so a
reader never sees half a file. Standard library only: the table imports this without JAX.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"  # one JSON row per logged step
ERROR_FILE = "error.json"
EVAL_FILE = "eval.json"
EXPERT_FILE = "expert_summary.json"
LOCK_FILE = ".lock"  # held (flock) by the one process writing the run folder
PLUGINS_FILE = "plugins.json"  # {module: file it was imported from}, for runs with plugins=[...]
STACKED_SEEDS_KEY = "seeds"  # tnd-train seeds=[...]: several seeds of one job, each in <job>/seed=<k>/


def seed_folder(job_dir: str | Path, seed: int) -> Path:
    """The run folder of ``seed`` inside a job that trained several seeds as one program."""
    return Path(job_dir) / f"seed={int(seed)}"


def stacked_seed(name: str) -> int | None:
    """``seed=3`` -> 3: the seed of a `seed_folder` name; None for any other name."""
    key, sep, value = name.partition("=")
    try:
        return int(value) if sep and key == "seed" else None
    except ValueError:
        return None


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


class RunFolderBusy(ValueError):
    """Another process is writing this run folder."""


@contextlib.contextmanager
def run_folder_lock(folder: str | Path) -> Iterator[Path]:
    """Holds ``<folder>/.lock`` (an exclusive ``flock``) while one process writes the folder.

    A second writer gets `RunFolderBusy` naming the holder's pid. The kernel releases the
    lock when its process ends, however it ends, so a lock left by a killed process is
    simply taken over.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunFolderBusy(
                f"Run folder {folder} is in use by another process (pid {holder}); wait for it to finish, "
                "or use another folder (hydra.run.dir=...)."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
