"""Run folders -> `RunRecord`: status (ok / failed / unfinished / missing), metrics, the
swept values Hydra recorded for the run."""

from __future__ import annotations

import dataclasses
import json
import os
import types
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from tnd.evaluation.table.columns import MODEL_KEY, SEED_KEY
from tnd.evaluation.table.statistics import TableError
from tnd.run_folder import ERROR_FILE, EXPERT_FILE, SUMMARY_FILE, stacked_seed

# --------------------------------------------------------------------------- run folders


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run (Hydra job folder) or one expected run that never started.

    status: "ok" (summary.json), "failed" (error.json), "unfinished" (.hydra/ only) or
    "missing" (expected, no folder; path is None). ``metrics`` is the summary (ok runs).
    """

    model: str | None
    seed: int | None
    status: str
    path: Path | None
    metrics: Mapping[str, object] = dataclasses.field(default_factory=dict)
    error: str | None = None
    overrides: tuple[str, ...] = ()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TableError(f"Cannot read {path}: {exc}. Delete the file (the run is then treated as unfinished) or fix it.") from exc
    if not isinstance(data, dict):
        raise TableError(f"{path} must hold a JSON object, found {type(data).__name__}.")
    return data


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _as_seed(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _identity_from_hydra(run_dir: Path) -> tuple[str | None, int | None, tuple[str, ...]]:
    """(model, seed, overrides) of a job folder from what Hydra wrote into ``.hydra/``."""
    hydra_dir = run_dir / ".hydra"
    model = seed = None
    overrides = _read_yaml(hydra_dir / "overrides.yaml") or []
    overrides = tuple(str(o) for o in overrides) if isinstance(overrides, list) else ()
    for line in overrides:
        key, sep, value = line.partition("=")
        key = key.lstrip("+~").split("@")[0]
        if sep and key == "model":
            model = value
        elif sep and key == "seed":
            seed = _as_seed(value)
    if model is None:
        hydra_cfg = _read_yaml(hydra_dir / "hydra.yaml") or {}
        choices = (hydra_cfg.get("hydra") or {}).get("runtime", {}).get("choices", {}) if isinstance(hydra_cfg, dict) else {}
        if isinstance(choices, dict) and isinstance(choices.get("model"), str):
            model = choices["model"]
    config = None
    if model is None or seed is None:
        config = _read_yaml(hydra_dir / "config.yaml")
    if isinstance(config, dict):
        if model is None:
            node = config.get("model")
            if isinstance(node, dict):
                node = node.get("name")
            model = node if isinstance(node, str) else None
        if seed is None:
            seed = _as_seed(config.get("seed"))
    return model, seed, overrides


def read_run(run_dir: str | os.PathLike) -> RunRecord:
    """The RunRecord of one Hydra job folder (summary.json wins over a stale error.json)."""
    run_dir = Path(run_dir)
    model, seed, overrides = _identity_from_hydra(run_dir)
    summary, error = run_dir / SUMMARY_FILE, run_dir / ERROR_FILE
    if summary.is_file():
        data = _read_json(summary)
        model = data.get("model", model)
        seed = _as_seed(data.get("seed", seed))
        return RunRecord(model, seed, "ok", run_dir, types.MappingProxyType(data), None, overrides)
    if error.is_file():
        data = _read_json(error)
        model = data.get("model", model)
        seed = _as_seed(data.get("seed", seed))
        message = str(data.get("error", "error.json without an 'error' message"))
        return RunRecord(model, seed, "failed", run_dir, types.MappingProxyType({}), message, overrides)
    return RunRecord(model, seed, "unfinished", run_dir, types.MappingProxyType({}), None, overrides)


def collect_runs(root: str | os.PathLike) -> list[RunRecord]:
    """Every run folder under ``root`` (itself included), sorted by path.

    A job folder is a directory with a ``.hydra/`` sub-folder; the walk does not descend
    into job folders (checkpoints, event files). A job that trained several seeds as one
    program (``tnd-train seeds=[...]``) holds one run folder per seed, ``seed=<k>/``, each
    with the ``.hydra/`` record of a separate run: those are the runs. Raises TableError if
    ``root`` is absent.
    """
    root = Path(root)
    if not root.is_dir():
        raise TableError(f"Run folder root '{root}' does not exist. Run the sweep first or pass the folder that holds the runs.")
    records = []
    for current, dirs, _files in os.walk(root):
        if ".hydra" in dirs:
            stacked = sorted((d for d in dirs if stacked_seed(d) is not None and (Path(current) / d / ".hydra").is_dir()),
                             key=stacked_seed)
            if stacked:
                records += [read_run(Path(current) / d) for d in stacked]
            else:
                records.append(read_run(current))
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(records, key=lambda r: str(r.path))


def _override_key(line: str) -> str:
    """``+graph.options.k@pkg=3`` -> ``graph.options.k``: the key an override line sets."""
    return line.partition("=")[0].lstrip("+~").split("@")[0]


def run_value(record: RunRecord, key: str) -> str | None:
    """The value of swept ``key`` in one run, as Hydra's override text; None if unknown.

    ``model`` and ``seed`` come from the record (summary, overrides or config); any other
    key from the overrides Hydra recorded for the job (``.hydra/overrides.yaml``).
    """
    if key == MODEL_KEY:
        return record.model
    if key == SEED_KEY:
        return None if record.seed is None else str(record.seed)
    for line in record.overrides:
        if "=" in line and _override_key(line) == key:
            return line.partition("=")[2]
    return None


def infer_row_keys(records: Iterable[RunRecord], ignore: Iterable[str] = ()) -> tuple[str, ...]:
    """Row keys of run folders without a sweep plan: ``model`` and every override key whose
    value differs between the folders (first-seen order; the seed and ``ignore`` never).

    Folders of a models × seeds sweep give ``("model",)``; an ablation's folders give
    ``("model", "graph", ...)``.
    """
    skip = {MODEL_KEY, SEED_KEY, *ignore}
    values: dict[str, set[str]] = {}
    for record in records:
        for line in record.overrides:
            key = _override_key(line)
            if "=" in line and key not in skip:
                values.setdefault(key, set()).add(line.partition("=")[2])
    return (MODEL_KEY, *(k for k, v in values.items() if len(v) > 1))


def load_expert_summary(path: str | os.PathLike) -> dict | None:
    """The expert's metrics (same keys as summary.json) from ``path``; None if absent.

    ``path`` may be the JSON file itself or a folder holding ``expert_summary.json``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / EXPERT_FILE
    if not path.is_file():
        return None
    return _read_json(path)
