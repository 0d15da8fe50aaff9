"""The files of a run folder: their names, and the one atomic JSON write they all use.

Every run writes ``run.json`` when it starts: its description (the resolved spec as a dict
and the overrides that made it), which the table, the curves and the sweep read, whoever
started the run (``tnd-train``, a sweep, a notebook). ``tnd-train`` writes ``summary.json`` (or, on failure, ``error.json``) and, for a run with
plugins, ``plugins.json`` (where each plugin module came from), ``tnd-eval``
writes ``eval.json``, ``tnd-table`` writes ``expert_summary.json`` in a sweep folder, and
the table reads them back. A JSON file is written to a temporary name and renamed, so a
reader never sees half a file. One process writes a run folder at a time (`run_folder_lock`;
tnd-train holds it before it writes anything there, its ``.hydra/`` record included), and an
OSError about a folder that cannot be used becomes one line (`path_problem`). Standard
library only: the table imports this without JAX.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import json
import math
import os
from collections.abc import Iterator, Mapping
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
RUN_FILE = "run.json"  # a run's description: {"spec": the resolved spec, "overrides": [...]}; written at its start
RECORD_DIR = ".hydra"  # Hydra's record of a tnd-train job (config.yaml, hydra.yaml, overrides.yaml); tnd-train writes it once it holds the lock
EVAL_STEPS_KEY = "eval_steps"  # summary.json / eval.json: env steps played by the evaluation (not training steps)
OLD_EVAL_STEPS_KEY = "steps"  # its name in summaries written before it was renamed


def write_run_description(run_dir: str | Path, spec: Mapping[str, Any], overrides: list[str] | None = None) -> Path:
    """``<run_dir>/run.json``: the run's resolved spec (a plain dict) and the overrides that
    made it (``[]`` when it was built by hand), so any reader can identify the run."""
    return write_json(Path(run_dir) / RUN_FILE, {"spec": dict(spec), "overrides": [str(o) for o in overrides or []]})


def override_key(line: str) -> str:
    """``+graph.options.k@pkg=3`` -> ``graph.options.k``: the key an override line sets."""
    return line.partition("=")[0].lstrip("+~").split("@")[0]


def seed_overrides(overrides: list[str], seed: int) -> list[str]:
    """The overrides of one seed of a stacked job: ``seed=<k>`` in place of ``seed``/``seeds``."""
    drop = ("seed", STACKED_SEEDS_KEY)
    return [o for o in overrides if override_key(o) not in drop] + [f"seed={int(seed)}"]


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


def eval_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """An evaluation's metrics as ``summary.json`` and ``eval.json`` record them: the env steps
    the games lasted are ``eval_steps``, so they are not read as training steps (``train_steps``)."""
    out = dict(metrics)
    if OLD_EVAL_STEPS_KEY in out:
        out[EVAL_STEPS_KEY] = out.pop(OLD_EVAL_STEPS_KEY)
    return out


def read_summary(data: Mapping[str, Any]) -> dict[str, Any]:
    """A ``summary.json``/``eval.json`` as read back: older files (``"steps"`` for the
    evaluation's steps) get today's key too, so readers need only ``eval_steps``."""
    out = dict(data)
    if EVAL_STEPS_KEY not in out and OLD_EVAL_STEPS_KEY in out:
        out[EVAL_STEPS_KEY] = out[OLD_EVAL_STEPS_KEY]
    return out


def _file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` (or ``path`` itself) that is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _existing_folder(path: Path) -> Path:
    """``path`` if it is a folder, else its nearest existing ancestor folder."""
    return next((p for p in (path, *path.parents) if p.is_dir()), path)


def path_problem(exc: OSError) -> str:
    """ONE readable line for an OSError about a path: which path, what is wrong with it, what to do."""
    if not exc.filename:
        return f"{exc.strerror or exc}."
    path = Path(os.fsdecode(exc.filename))
    blocker = _file_above(path.parent if exc.errno == errno.EEXIST else path)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and blocker is not None:
        return f"Cannot use {path}: {blocker} is a file, not a folder. Choose a path inside a folder."
    if exc.errno == errno.EEXIST and path.exists() and not path.is_dir():
        return f"Cannot use {path} as a folder: it is a file. Choose another path."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (f"Cannot write {path}: permission denied ({_existing_folder(path)} is not writable for you). "
                "Make it writable, or choose a folder you can write.")
    if exc.errno == errno.EROFS:
        return f"Cannot write {path}: it is on a read-only file system. Choose a folder on a writable one."
    if exc.errno == errno.ENOSPC:
        return f"Cannot write {path}: no space left on its device. Free some space or choose another folder."
    if exc.errno == errno.EISDIR:
        return f"Cannot write {path}: it is a folder, where a file was expected. Move it away or choose another path."
    return f"Cannot use {path}: {exc.strerror or exc}."


class RunFolderBusy(ValueError):
    """Another process is writing this run folder."""


class RunFolderError(ValueError):
    """A run folder that cannot be created or written (a file in its path, no permission, read-only)."""


# Run folders this context owns for a whole job (`own_run_folder`): `run_folder_lock` passes them.
_OWNED: contextvars.ContextVar[frozenset[Path]] = contextvars.ContextVar("tnd_owned_run_folders", default=frozenset())


@contextlib.contextmanager
def own_run_folder(folder: str | Path) -> Iterator[Path]:
    """Holds ``folder``'s lock (`run_folder_lock`) for a whole job, so the library calls made
    inside it that lock the folder themselves (`tnd.app.run_experiment`) pass instead of
    refusing their own caller. tnd-train takes it before it writes anything into the folder,
    its record included: a second writer is refused with the folder unchanged."""
    with run_folder_lock(folder) as path:
        token = _OWNED.set(_OWNED.get() | {Path(folder).resolve()})
        try:
            yield path
        finally:
            _OWNED.reset(token)


@contextlib.contextmanager
def run_folder_lock(folder: str | Path) -> Iterator[Path]:
    """Holds ``<folder>/.lock`` (an exclusive ``flock``) while one process writes the folder.

    A second writer gets `RunFolderBusy` naming the holder's pid (inside `own_run_folder`
    of the same folder the lock is already held: it passes). The kernel releases the
    lock when its process ends, however it ends, so a lock left by a killed process is
    simply taken over. A folder that cannot be created or written gives `RunFolderError`.
    """
    folder = Path(folder)
    if folder.resolve() in _OWNED.get():
        yield folder / LOCK_FILE
        return
    path = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunFolderError(path_problem(exc)) from None
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
