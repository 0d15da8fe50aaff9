"""Orbax checkpoints of a training run: params, optimizer state, model state, metadata.

One checkpoint (a step folder under ``<run>/checkpoints``) holds:

* ``params``    the ``nnx.Param`` state
* ``rest``      the other model state (RNG streams, counters)
* ``opt_state`` the optax state
* ``meta``      JSON: step, data-iterator state, seeds, the model fingerprint, the config

Orbax writes each step to a temporary folder and renames it when complete, so a run killed
at any moment (even ``kill -9``) leaves only whole checkpoints; `latest_step` ignores
unfinished ones. A checkpoint from a different model (fingerprint mismatch) or one that
cannot be read raises `CheckpointError` with the folder and the fix.

**Integrity.** Each finished step records the SHA-256 of every file in it
(``<step>/files.sha256.json``), checked before anything is read, so a missing or altered
file is one readable error rather than a library traceback; and ``meta["digests"]`` holds a
SHA-256 of each saved tree's bytes, computed from the arrays being saved and recomputed from
what was read, so flipped bytes are detected, not silently loaded. The steps kept after each
finished save are recorded too (``<checkpoints>/saved_steps.json``), so a step folder that
was deleted is noticed. `restore_intact` walks back from the newest step to the newest
intact one and then warns once (`CheckpointWarning`) for each damaged or deleted step it
skipped; when none is intact it fails with one error and no warning. Only finite parameters
are ever saved (the train step refuses updates that are not) and a restore refuses
non-finite ones.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from tnd.graph.arrays import GraphData


class CheckpointError(ValueError):
    """A checkpoint that does not belong to this run or cannot be read."""


class DamagedCheckpointError(CheckpointError):
    """A checkpoint whose files are unreadable or whose bytes differ from what was saved."""


class CheckpointWarning(UserWarning):
    """A damaged checkpoint was skipped for an older, intact one."""


def tree_digest(tree: Any) -> str:
    """SHA-256 over the bytes, shapes and dtypes of a tree's leaves (PRNG keys by their data)."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        array = np.asarray(leaf)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def all_finite(tree: Any) -> bool:
    """True when every floating-point leaf of ``tree`` is finite."""
    leaves = [np.asarray(x) for x in jax.tree.leaves(tree) if jax.dtypes.issubdtype(getattr(x, "dtype", None), np.floating)]
    return all(bool(np.isfinite(x).all()) for x in leaves)


def _abstract(tree: Any) -> Any:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _has_leaves(tree: Any) -> bool:
    return len(jax.tree.leaves(tree)) > 0


def _canonical(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


FILES_RECORD = "files.sha256.json"
STEPS_RECORD = "saved_steps.json"  # in the checkpoints folder: the steps kept after the last finished save


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Checkpointer:
    """A thin `ocp.CheckpointManager` wrapper for the three state trees plus metadata."""

    def __init__(self, directory: str | Path, *, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max(1, int(max_to_keep)), create=True),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        """Every complete checkpoint's step, newest first."""
        return sorted(self.manager.all_steps(), reverse=True)

    def save(self, step: int, *, params: Any, rest: Any, opt_state: Any, meta: dict[str, Any]) -> None:
        """Starts an asynchronous save of ``step`` (call `wait` before relying on it).

        ``rest``'s graph data (`tnd.graph.GraphData`) is left out: the model rebuilds it from
        the run's config (`without_graph_data`).
        """
        rest, _ = without_graph_data(rest)
        trees = {"params": params, "rest": rest, "opt_state": opt_state}
        meta = {**meta, "digests": {k: tree_digest(t) for k, t in trees.items()}}
        self.wait()  # the previous save is final: record its files before the next one starts
        items = {
            "params": ocp.args.StandardSave(params),
            "opt_state": ocp.args.StandardSave(opt_state),
            "meta": ocp.args.JsonSave(_canonical(meta)),
        }
        if _has_leaves(rest):  # orbax refuses empty trees; models without RNG state have none
            items["rest"] = ocp.args.StandardSave(rest)
        self.manager.save(int(step), args=ocp.args.Composite(**items))

    def wait(self) -> None:
        """Waits for the pending save, then records the files of every finished step and
        which steps are kept (`STEPS_RECORD`)."""
        self.manager.wait_until_finished()
        for step in self.manager.all_steps():
            self._record_files(step)
        self._record_steps()

    def _record_steps(self) -> None:
        steps = sorted(int(s) for s in self.manager.all_steps())
        if not steps or steps == self.recorded_steps():
            return
        record = self.directory / STEPS_RECORD
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"steps": steps}))
        tmp.replace(record)

    def recorded_steps(self) -> list[int]:
        """The steps `STEPS_RECORD` says were kept ([] when absent or unreadable). Orbax
        deletes the oldest steps beyond ``max_to_keep`` only when a newer one is saved."""
        try:
            steps = json.loads((self.directory / STEPS_RECORD).read_text())["steps"]
            return sorted(int(s) for s in steps)
        except (OSError, ValueError, TypeError, KeyError):
            return []

    def _record_files(self, step: int) -> None:
        folder = self.directory / str(step)
        record = folder / FILES_RECORD
        if not folder.is_dir() or record.exists():
            return
        files = {str(p.relative_to(folder)): _file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(files, indent=1, sort_keys=True))
        tmp.replace(record)

    def check_files(self, step: int) -> None:
        """`DamagedCheckpointError` when a file recorded for ``step`` is missing or altered."""
        folder = self.directory / str(step)
        record = folder / FILES_RECORD
        if not record.is_file():
            return  # killed before its files were recorded: the tree digests still apply
        try:
            files = json.loads(record.read_text())
        except (OSError, json.JSONDecodeError):
            raise DamagedCheckpointError(f"Checkpoint {folder}: its {FILES_RECORD} cannot be read.") from None
        for name, digest in files.items():
            path = folder / name
            if not path.is_file():
                raise DamagedCheckpointError(f"Checkpoint {folder} is damaged: {name} is missing.")
            if _file_sha256(path) != digest:
                raise DamagedCheckpointError(
                    f"Checkpoint {folder} is damaged: {name} differs from what was saved (checksum mismatch)."
                )

    def read_meta(self, step: int) -> dict[str, Any]:
        """The JSON metadata of checkpoint ``step``; `CheckpointError` if unreadable."""
        self.check_files(step)
        try:
            out = self.manager.restore(int(step), args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            return dict(out.meta)
        except Exception as exc:  # noqa: BLE001 - any failure to read means corrupt
            raise DamagedCheckpointError(
                f"Checkpoint {self.directory / str(step)} cannot be read ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). Delete that folder to resume from an "
                "earlier checkpoint, or start in a fresh run folder."
            ) from None

    def restore(
        self, step: int, *, params: Any, rest: Any, opt_state: Any, fingerprint: dict[str, Any] | None = None
    ) -> tuple[Any, Any, Any, dict[str, Any]]:
        """Restores ``step`` into trees shaped like the given templates.

        ``fingerprint`` (if given) must equal the one saved in ``meta["fingerprint"]``.
        Returns ``(params, rest, opt_state, meta)``.
        """
        meta = self.read_meta(step)
        check_fingerprint(meta, fingerprint, self.directory / str(step))
        rest, graph = without_graph_data(rest)
        out = self._restore_trees(step, meta, params=params, rest=rest, opt_state=opt_state)
        return out["params"], _with_graph_data(out["rest"], graph), out["opt_state"], meta

    def restore_params(self, step: int, *, params: Any, rest: Any) -> tuple[Any, Any]:
        """Only the model state (for evaluation)."""
        rest, graph = without_graph_data(rest)
        out = self._restore_trees(step, self.read_meta(step), params=params, rest=rest)
        return out["params"], _with_graph_data(out["rest"], graph)

    def restore_intact(self, restore: Callable[[int], Any], *,
                       recorded: Mapping[int, str] | None = None) -> tuple[int, Any]:
        """``(step, restore(step))`` for the newest step that is intact, newest first.

        A damaged step (`DamagedCheckpointError`) is skipped, and so is a deleted one: a step
        that the run's records say was saved (`STEPS_RECORD`, or ``recorded``: step -> the
        record that names it, e.g. the run's summary) and whose folder is gone. Steps older
        than every kept one are not counted as deleted (orbax removes those itself). Once an
        intact step is restored, each skipped step gets one `CheckpointWarning`; when none is
        intact, one `DamagedCheckpointError` says so (no warnings first). Other errors (a
        different model, a changed config) are raised as they are.
        """
        steps = self.steps()
        gone = self.deleted_steps(steps, recorded or {})
        if not steps:
            raise CheckpointError(f"No complete checkpoint in {self.directory}"
                                  + (f"; {'; '.join(gone.values())}." if gone else "."))
        skipped: list[tuple[int, str, str]] = []  # (step, "damaged" / "missing", why)
        for step in sorted(set(steps) | set(gone), reverse=True):
            if step in gone:
                skipped.append((step, "missing", gone[step]))
                continue
            try:
                result = restore(step)
            except DamagedCheckpointError as exc:
                skipped.append((step, "damaged", str(exc)))
                continue
            for old, what, why in skipped:
                warnings.warn(f"checkpoint {old} is {what}; using checkpoint {step} instead. ({why})",
                              CheckpointWarning, stacklevel=2)
            return step, result
        counts = ", ".join(f"{sum(w == what for _, w, _ in skipped)} {what}" for what in ("damaged", "missing")
                           if any(w == what for _, w, _ in skipped))
        raise DamagedCheckpointError(f"No intact checkpoint in {self.directory} ({counts}; newest: {skipped[0][2]})")

    def deleted_steps(self, steps: list[int], recorded: Mapping[int, str]) -> dict[int, str]:
        """``{step: why}`` for each step the records name that is not among ``steps`` (the
        complete ones on disk) and newer than the oldest of them (or any, when none is left)."""
        named = {**{s: f"the run recorded it in {self.directory / STEPS_RECORD}" for s in self.recorded_steps()},
                 **dict(recorded)}
        oldest = min(steps, default=None)
        return {s: f"{self.directory / str(s)} is gone although {why}"
                for s, why in sorted(named.items(), reverse=True)
                if s not in steps and (oldest is None or s > oldest)}

    def _restore_trees(self, step: int, meta: dict[str, Any], **templates: Any) -> dict[str, Any]:
        """Restores the named trees of ``step`` shaped like ``templates`` (empty trees pass
        through) and checks them against the digests saved in ``meta``."""
        where = self.directory / str(step)
        items = {k: ocp.args.StandardRestore(_abstract(t)) for k, t in templates.items() if _has_leaves(t)}
        try:
            out = self.manager.restore(int(step), args=ocp.args.Composite(**items))
        except Exception as exc:  # noqa: BLE001 - any failure means a different model or corruption
            raise DamagedCheckpointError(
                f"Checkpoint {where} does not match this model or is corrupt "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                "Start in a fresh run folder (hydra.run.dir=...) or delete the checkpoints folder."
            ) from None
        trees = {k: (out[k] if k in items else t) for k, t in templates.items()}
        saved = meta.get("digests") or {}
        changed = [k for k, tree in trees.items() if k in saved and tree_digest(tree) != saved[k]]
        if changed:
            raise DamagedCheckpointError(
                f"Checkpoint {where} is damaged: the {', '.join(changed)} read back differ from what was saved "
                "(checksum mismatch). Delete that step folder, or start in a fresh run folder."
            )
        if "params" in trees and not all_finite(trees["params"]):
            raise DamagedCheckpointError(f"Checkpoint {where} holds non-finite parameters; it cannot be used.")
        return trees

    def close(self) -> None:
        self.manager.close()


def without_graph_data(rest: Any) -> tuple[Any, Any]:
    """``(rest without its graph data, the graph data)`` of a model's non-parameter state.

    A checkpoint does not hold the graph's index arrays (`tnd.graph.GraphData`): they follow
    from the run's config, and leaving them out keeps checkpoints of older versions readable.
    """
    if not isinstance(rest, nnx.State):
        return rest, None
    graph, kept = nnx.split_state(rest, GraphData, ...)
    return kept, graph


def _with_graph_data(rest: Any, graph: Any) -> Any:
    return rest if graph is None else nnx.merge_state(rest, graph)


def check_fingerprint(meta: dict[str, Any], fingerprint: dict[str, Any] | None, where: Path) -> None:
    """Raises `CheckpointError` when the saved model fingerprint differs from ``fingerprint``."""
    if fingerprint is None:
        return
    saved = meta.get("fingerprint")
    want = _canonical(fingerprint)
    if saved != want:
        diffs = []
        if isinstance(saved, dict):
            for k in sorted(set(saved) | set(want)):
                if saved.get(k) != want.get(k):
                    diffs.append(f"{k}: checkpoint has {saved.get(k)!r}, this run has {want.get(k)!r}")
        detail = "; ".join(diffs) if diffs else "no fingerprint saved"
        raise CheckpointError(
            f"Checkpoint {where} was written by a different model ({detail}). "
            "Use a fresh run folder (hydra.run.dir=...) or delete its checkpoints folder."
        )


# Config keys that may change between the run that saved a checkpoint and the one resuming
# it: they change no result (where files go, what is printed, how often, the final evaluation).
RESUMABLE_CHANGES = (
    "train.progress", "train.log_every", "train.eval_every", "train.checkpoint_every", "train.max_to_keep", "train.devices",
    "train.resume_with_changes", "train.param_limit", "train.memory_fraction", "data.root", "data.path", "data.num_envs",
    "data.num_workers",
    "eval",
)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def config_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, saved value, current value)`` for every key whose value differs
    between two configs, sorted by key, except `RESUMABLE_CHANGES`."""
    a, b = _flatten(_canonical(saved)), _flatten(_canonical(current))
    free = lambda key: any(key == p or key.startswith(p + ".") for p in RESUMABLE_CHANGES)  # noqa: E731
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and not free(k)]


def check_config(saved: dict[str, Any], current: dict[str, Any], where: Path, *, allow: bool = False) -> None:
    """Refuses to resume a checkpoint saved under another config (`CheckpointError` naming the
    differing keys), unless ``allow`` (``train.resume_with_changes=true``)."""
    if not saved or not current or allow:
        return
    changed = config_changes(saved, current)
    if changed:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in changed[:8])
        more = f" (+{len(changed) - 8} more)" if len(changed) > 8 else ""
        raise CheckpointError(
            f"The checkpoints in {where} were saved under another config ({listed}{more}). Resuming would mix "
            "the two. Use a fresh run folder, or pass train.resume_with_changes=true to resume anyway."
        )
