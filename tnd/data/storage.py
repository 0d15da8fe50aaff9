"""Demonstration datasets on disk: a documented array directory, written atomically.

Format (``FORMAT = "tnd-demos/1"``), one directory per dataset::

    <root>/demos-<hash>/
        meta.json           format, metadata (env, obs mode, producing config), num_steps,
                            num_episodes, and per array: file, dtype, shape, sha256
        observations.npy    [S, *obs]  float32 (pixels mode: stored as uint8, see below)
        actions.npy         [S] int32  expert labels
        taken_actions.npy   [S] int32  executed actions
        rewards.npy         [S] float32
        catches.npy, misses.npy   [S] bool
        episode_starts.npy  [E] int64
        seeds.npy           [E] int64
        COMPLETE            written last; a dataset without it is never loaded

Why this format and not Minari: Minari (the gymnasium ecosystem's offline-RL format) is
not installed and would add a dependency (plus h5py) for what is here a handful of flat
arrays; its episode-per-group layout also does not store our expert labels next to the
executed actions, the catch events, or the producing config without custom fields. Plain
``.npy`` files are readable by NumPy alone, memory-mappable (``np.load(mmap_mode="r")``),
and checksummed in ``meta.json``, which makes truncation and corruption detectable.

Pixel observations (grey frames in [0, 1]) are stored as ``uint8`` (``round(255 * x)``,
error <= 1/510) and converted back to float32 on load: 4x less disk. RAM observations
(bytes / 255) are stored the same way, exactly.

Atomicity: everything is written into a temporary sibling directory, the completion
marker last, then the directory is moved into place with ``os.replace``; an interrupted
write leaves only a ``.tmp-*`` directory that is never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from tnd.envs.demonstrations import Demonstrations, content_problems

FORMAT = "tnd-demos/1"
META_FILE = "meta.json"
MARKER_FILE = "COMPLETE"
ARRAYS = ("observations", "actions", "taken_actions", "rewards", "catches", "misses", "episode_starts", "seeds")


class DatasetError(ValueError):
    """A missing, truncated, corrupt or mismatched dataset."""


def _jsonable(value: Any) -> Any:
    """Normalises tuples/NumPy scalars so that configs compare equal after a JSON round trip."""
    return json.loads(json.dumps(value, sort_keys=True, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def dataset_hash(config: dict) -> str:
    """A stable short hash of a JSON-able config (key order does not matter)."""
    text = json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dataset_path(root, config: dict) -> pathlib.Path:
    """Where the dataset produced by ``config`` lives: ``<root>/demos-<hash(config)>``."""
    return pathlib.Path(root) / f"demos-{dataset_hash(config)}"


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


QUANTISED_OBS_MODES = ("pixels", "ram")  # observations k / 255: stored as uint8 k


def _quantised(demos: Demonstrations) -> bool:
    return demos.metadata.get("obs_mode") in QUANTISED_OBS_MODES


def save_demonstrations(demos: Demonstrations, path, *, replace: bool = True) -> None:
    """Writes ``demos`` to directory ``path`` atomically (replacing an existing dataset, or
    with ``replace=False`` keeping one another process stored first)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        arrays_meta = {}
        for name in ARRAYS:
            array = np.asarray(getattr(demos, name))
            if name == "observations" and _quantised(demos):
                array = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
            file = tmp / f"{name}.npy"
            np.save(file, array, allow_pickle=False)
            arrays_meta[name] = {"file": file.name, "dtype": str(array.dtype), "shape": list(array.shape),
                                 "sha256": _sha256(file)}
        meta = {
            "format": FORMAT,
            "num_steps": demos.num_steps,
            "num_episodes": demos.num_episodes,
            "observations_quantised_uint8": _quantised(demos),
            "metadata": _jsonable(demos.metadata),
            "arrays": arrays_meta,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        (tmp / MARKER_FILE).write_text("ok\n")
        _fsync_dir(tmp)
        if path.exists() and not replace:
            shutil.rmtree(tmp, ignore_errors=True)
            return
        if path.exists():  # replace an old dataset: move it aside first (rename is atomic)
            old = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "data")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, path)
            except OSError:  # another writer put a complete dataset there first
                if replace or not (path / MARKER_FILE).exists():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_dir(directory: pathlib.Path) -> None:
    for file in directory.iterdir():
        with open(file, "rb") as f:
            os.fsync(f.fileno())


def load_demonstrations(
    path, *, num_actions: int, expected_metadata: dict | None = None, verify: bool = True,
) -> Demonstrations:
    """Reads a dataset written by `save_demonstrations`, for an env with ``num_actions`` actions.

    Raises `DatasetError` (one message naming the file and the fix) when the dataset is
    missing, incomplete, truncated, corrupt (checksum, with ``verify``), when its contents
    are unusable (labels outside ``[0, num_actions)``, inconsistent offsets, wrong dtypes),
    or when a key of ``expected_metadata`` differs from the stored metadata (e.g. another
    ``obs_mode``).
    """
    path = pathlib.Path(path)
    fix = f"delete '{path}' and collect it again (tnd-collect)"
    if not path.is_dir():
        raise DatasetError(f"No dataset at '{path}': collect it first (tnd-collect).")
    if not (path / MARKER_FILE).exists():
        raise DatasetError(f"Dataset '{path}' is incomplete (no {MARKER_FILE} marker; an interrupted write?): {fix}.")
    try:
        meta = json.loads((path / META_FILE).read_text())
        if meta.get("format") != FORMAT:
            raise DatasetError(f"Dataset '{path / META_FILE}' has format {meta.get('format')!r}, expected {FORMAT!r}: {fix}.")
        arrays = {}
        for name in ARRAYS:
            info = meta["arrays"][name]
            file = path / info["file"]
            if verify and _sha256(file) != info["sha256"]:
                raise DatasetError(f"Dataset file '{file}' is corrupt (checksum mismatch): {fix}.")
            array = np.load(file, allow_pickle=False)
            if list(array.shape) != info["shape"] or str(array.dtype) != info["dtype"]:
                raise DatasetError(
                    f"Dataset file '{file}' has shape {array.shape} {array.dtype}, meta.json says "
                    f"{tuple(info['shape'])} {info['dtype']}: {fix}."
                )
            arrays[name] = array
    except DatasetError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise DatasetError(f"Dataset '{path}' is truncated or corrupt ({type(err).__name__}: {err}): {fix}.") from err

    metadata = meta["metadata"]
    for key, expected in (expected_metadata or {}).items():
        found = metadata.get(key, "<missing>")
        if found != _jsonable(expected):
            raise DatasetError(
                f"Dataset '{path}' was collected with {key}={found!r} but {key}={_jsonable(expected)!r} was "
                f"requested: collect a dataset with the requested settings or point to the right one."
            )
    if meta.get("observations_quantised_uint8"):
        arrays["observations"] = arrays["observations"].astype(np.float32) / np.float32(255.0)
    demos = Demonstrations(**arrays, metadata=metadata)
    if demos.num_steps != meta["num_steps"] or demos.num_episodes != meta["num_episodes"]:
        raise DatasetError(f"Dataset '{path / META_FILE}' disagrees with its arrays: {fix}.")
    problems = content_problems(demos, num_actions)
    if problems:
        raise DatasetError(f"Dataset '{path}' has unusable contents ({'; '.join(problems)}): {fix}.")
    return demos


def load_or_collect(
    root,
    config: dict,
    collect: Callable[[], Demonstrations],
    *,
    num_actions: int,
    expected_metadata: dict | None = None,
    progress: bool = True,
) -> Demonstrations:
    """Loads the dataset addressed by ``config`` under ``root``, or collects and saves it
    (``num_actions``: the env's, as in `load_demonstrations`).

    The producing config is stored in the metadata (``producing_config``). A dataset that
    exists but is broken raises `DatasetError` rather than being silently re-collected.
    """
    path = dataset_path(root, config)
    if path.exists():
        if progress:
            print(f"Reusing dataset {path}")
        return load_demonstrations(path, num_actions=num_actions, expected_metadata=expected_metadata)
    demos = collect()
    metadata = {**demos.metadata, "producing_config": _jsonable(config)}
    demos = Demonstrations(**{name: getattr(demos, name) for name in ARRAYS}, metadata=metadata)
    if path.exists():  # another process stored the same dataset meanwhile: never replace it under its readers
        return load_demonstrations(path, num_actions=num_actions, expected_metadata=expected_metadata)
    save_demonstrations(demos, path, replace=False)
    if progress:
        print(f"Saved dataset {path} ({demos.num_episodes} episodes, {demos.num_steps} steps)")
    for key, expected in (expected_metadata or {}).items():
        if metadata.get(key) != _jsonable(expected):
            raise DatasetError(
                f"The collected dataset '{path}' has {key}={metadata.get(key)!r}, not the requested "
                f"{_jsonable(expected)!r}: the collect function does not match the requested settings."
            )
    return demos
