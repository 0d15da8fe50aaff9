"""Run folders -> `RunRecord`: status (ok / failed / unfinished / missing), metrics, the
swept values of the run.

A run describes itself in ``run.json`` (its resolved spec and overrides, written when it
starts, whoever started it: `tnd.run_folder.write_run_description`). A ``tnd-train`` job
folder also holds Hydra's ``.hydra/`` record, which is what identifies a run written before
``run.json`` existed, or one whose ``run.json`` is not written yet (a job still starting).
Either is read as plain data only: a file that is malformed or holds a tag that is not plain
data (``!!python/...``) makes its run "failed" with a message naming the file
(`RunRecordError`), and the other runs are read as usual.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import types
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from tnd.evaluation.table.columns import MODEL_KEY, SEED_KEY
from tnd.evaluation.table.statistics import TableError
from tnd.run_folder import (
    ERROR_FILE, EXPERT_FILE, RECORD_DIR, RUN_FILE, SUMMARY_FILE, override_key, read_summary, stacked_seed,
)

# --------------------------------------------------------------------------- run folders


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run folder or one expected run that never started.

    status: "ok" (summary.json), "failed" (error.json), "unfinished" (run.json or .hydra/
    only) or "missing" (expected, no folder; path is None). ``metrics`` is the summary (ok
    runs); ``overrides`` and ``config`` (the resolved spec, or Hydra's resolved config for a
    run without run.json) say what the run was asked to be.
    """

    model: str | None
    seed: int | None
    status: str
    path: Path | None
    metrics: Mapping[str, object] = dataclasses.field(default_factory=dict)
    error: str | None = None
    overrides: tuple[str, ...] = ()
    config: Mapping[str, object] = dataclasses.field(default_factory=dict)  # run.json's spec (or .hydra/config.yaml)
    choices: Mapping[str, object] = dataclasses.field(default_factory=dict)  # config group -> option (.hydra/hydra.yaml)
    unreadable: str | None = None  # the record file that could not be read (then status "failed")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TableError(f"Cannot read {path}: {exc}. Delete the file (the run is then treated as unfinished) or fix it.") from exc
    if not isinstance(data, dict):
        raise TableError(f"{path} must hold a JSON object, found {type(data).__name__}.")
    return data


HYDRA_RECORD_FILES = ("config.yaml", "overrides.yaml", "hydra.yaml")  # what Hydra writes into .hydra/
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # plain data only, in C where available


@functools.lru_cache(maxsize=4096)
def _load_yaml(path: str, mtime_ns: int, size: int):
    """A YAML file's plain data, parsed once per version of the file (the sweep's progress
    display reads every run folder every few seconds)."""
    return yaml.load(Path(path).read_text(), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader


class RunRecordError(TableError):
    """A file of a run folder's ``.hydra/`` record that is not plain, readable YAML."""


def read_hydra_file(path: Path):
    """The plain data of a ``.hydra/`` record file (None when absent).

    Only plain YAML is read (a safe loader): a malformed file, or one with a tag that is not
    plain data (``!!python/object/...``, which a full loader would execute), raises
    `RunRecordError` naming the file.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunRecordError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if not path.is_file():
        return None
    try:
        return _load_yaml(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise RunRecordError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        kind = "holds a tag that is not plain data" if "constructor" in problem else "is not valid YAML"
        raise RunRecordError(f"{path} {kind}{where}: {problem}. Restore that file from the run (or delete the "
                             "run folder).") from None


def _as_seed(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class HydraRecord:
    """What Hydra wrote into a job folder's ``.hydra/`` (each part empty when absent or unreadable)."""

    overrides: tuple[str, ...] = ()
    choices: Mapping[str, object] = dataclasses.field(default_factory=dict)
    config: Mapping[str, object] = dataclasses.field(default_factory=dict)
    unreadable: str | None = None  # the first file that could not be read, and why (`RunRecordError`)


def read_hydra_record(run_dir: Path) -> HydraRecord:
    """The overrides, config-group choices and resolved config of a job folder; a file that
    cannot be read (`read_hydra_file`) is left out and named in ``unreadable``."""
    hydra_dir = Path(run_dir) / ".hydra"
    data, problems = {}, []
    for name in HYDRA_RECORD_FILES:
        try:
            data[name] = read_hydra_file(hydra_dir / name)
        except RunRecordError as exc:
            problems.append(str(exc))
    overrides, hydra_cfg, config = data.get("overrides.yaml"), data.get("hydra.yaml"), data.get("config.yaml")
    choices = ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") if isinstance(hydra_cfg, dict) else None
    return HydraRecord(
        overrides=tuple(str(o) for o in overrides) if isinstance(overrides, list) else (),
        choices=types.MappingProxyType(dict(choices)) if isinstance(choices, dict) else types.MappingProxyType({}),
        config=types.MappingProxyType(config) if isinstance(config, dict) else types.MappingProxyType({}),
        unreadable=problems[0] if problems else None,
    )


def read_run_description(run_dir: Path) -> HydraRecord | None:
    """The overrides and spec of a run from its ``run.json`` (None when absent); a file that
    is not a JSON object with a ``spec`` is named in ``unreadable``."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        spec, overrides = data["spec"], data.get("overrides") or []
        if not isinstance(spec, dict) or not isinstance(overrides, list):
            raise TypeError("'spec' must be an object and 'overrides' a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return HydraRecord(unreadable=f"Cannot read {path}: {exc}. Delete the run folder (or rerun it) to "
                                      "make it readable.")
    return HydraRecord(overrides=tuple(str(o) for o in overrides), config=types.MappingProxyType(spec))


def read_record(run_dir: Path) -> HydraRecord:
    """What a run folder says about the run: its ``run.json``, else Hydra's ``.hydra/``."""
    return read_run_description(run_dir) or read_hydra_record(run_dir)


def _identity(record: HydraRecord) -> tuple[str | None, int | None]:
    """(model, seed) of a job from its overrides, else its config-group choice and config."""
    model = seed = None
    for line in record.overrides:
        _, sep, value = line.partition("=")
        if sep and override_key(line) == "model":
            model = value
        elif sep and override_key(line) == "seed":
            seed = _as_seed(value)
    if model is None and isinstance(record.choices.get("model"), str):
        model = record.choices["model"]
    if model is None:
        node = record.config.get("model")
        node = node.get("name") if isinstance(node, dict) else node
        model = node if isinstance(node, str) else None
    if seed is None:
        seed = _as_seed(record.config.get("seed"))
    return model, seed


def read_run(run_dir: str | os.PathLike) -> RunRecord:
    """The RunRecord of one run folder (summary.json wins over a stale error.json).

    The model comes from the overrides, the config-group choice or the config, and the
    summary (or error.json) where it names one. A record file that cannot be read makes the
    run "failed" with that file named (`read_record`).
    """
    run_dir = Path(run_dir)
    hydra_record = read_record(run_dir)
    unreadable = hydra_record.unreadable
    model, seed = _identity(hydra_record)
    summary, error = run_dir / SUMMARY_FILE, run_dir / ERROR_FILE
    known = {"overrides": hydra_record.overrides, "config": hydra_record.config, "choices": hydra_record.choices,
             "unreadable": unreadable}
    data = _read_json(summary) if summary.is_file() else _read_json(error) if error.is_file() else {}
    model = data.get("model") or model
    seed = _as_seed(data.get("seed", seed))
    if unreadable is not None:
        return RunRecord(model, seed, "failed", run_dir, types.MappingProxyType({}), unreadable, **known)
    if summary.is_file():
        return RunRecord(model, seed, "ok", run_dir, types.MappingProxyType(read_summary(data)), None, **known)
    if error.is_file():
        message = str(data.get("error", "error.json without an 'error' message"))
        return RunRecord(model, seed, "failed", run_dir, types.MappingProxyType({}), message, **known)
    return RunRecord(model, seed, "unfinished", run_dir, types.MappingProxyType({}), None, **known)


def collect_runs(root: str | os.PathLike) -> list[RunRecord]:
    """Every run folder under ``root`` (itself included), sorted by path.

    A run folder is a directory with a ``run.json`` (or a ``.hydra/`` sub-folder, or the
    outcome of a run that failed before describing itself: ``error.json``); the walk
    does not descend into run folders (checkpoints, event files). A job that trained several
    seeds as one program (``tnd-train seeds=[...]``) holds one run folder per seed,
    ``seed=<k>/``: those are the runs. Raises TableError if ``root`` is absent.
    """
    root = Path(root)
    if not root.is_dir():
        raise TableError(f"Run folder root '{root}' does not exist. Run the sweep first or pass the folder that holds the runs.")
    records = []
    for current, dirs, files in os.walk(root):
        if RECORD_DIR in dirs or {RUN_FILE, SUMMARY_FILE, ERROR_FILE} & set(files):
            stacked = sorted((d for d in dirs if stacked_seed(d) is not None and _holds_run(Path(current) / d)),
                             key=stacked_seed)
            if stacked:
                records += [read_run(Path(current) / d) for d in stacked]
            else:
                records.append(read_run(current))
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(records, key=lambda r: str(r.path))


def _holds_run(folder: Path) -> bool:
    """Whether a seed folder of a stacked job holds a run (its description, or its outcome)."""
    return any((folder / name).exists() for name in (RUN_FILE, RECORD_DIR, SUMMARY_FILE, ERROR_FILE))


def _override_text(value) -> str:
    """A config value as Hydra's override text (``true``, ``null``, ``[1,2]``, ``0.5``)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _config_value(record: RunRecord, key: str) -> str | None:
    """The value of ``key`` the run resolved: a config group's chosen option (``graph``: the
    group's ``name`` in the spec), or the dotted key in its spec (``train.steps``); None if
    neither has it."""
    if isinstance(record.choices.get(key), str):
        return str(record.choices[key])
    node: object = record.config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, Mapping) and isinstance(node.get("name"), str):
        return node["name"]
    return _override_text(node)


def run_value(record: RunRecord, key: str) -> str | None:
    """The value of swept ``key`` in one run, as Hydra's override text; None if unknown.

    ``model`` and ``seed`` come from the record (summary, overrides or config); any other
    key from the run's overrides, else from the spec the run resolved (a key a single run left at its default: `_config_value`).
    """
    if key == MODEL_KEY:
        return record.model
    if key == SEED_KEY:
        return None if record.seed is None else str(record.seed)
    for line in record.overrides:
        if "=" in line and override_key(line) == key:
            return line.partition("=")[2]
    return _config_value(record, key)


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
            key = override_key(line)
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
