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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(ValueError):
    """A checkpoint that does not belong to this run or cannot be read."""


def _abstract(tree: Any) -> Any:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _has_leaves(tree: Any) -> bool:
    return len(jax.tree.leaves(tree)) > 0


def _canonical(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


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

    def save(self, step: int, *, params: Any, rest: Any, opt_state: Any, meta: dict[str, Any]) -> None:
        """Starts an asynchronous save of ``step`` (call `wait` before relying on it)."""
        items = {
            "params": ocp.args.StandardSave(params),
            "opt_state": ocp.args.StandardSave(opt_state),
            "meta": ocp.args.JsonSave(_canonical(meta)),
        }
        if _has_leaves(rest):  # orbax refuses empty trees; models without RNG state have none
            items["rest"] = ocp.args.StandardSave(rest)
        self.manager.save(int(step), args=ocp.args.Composite(**items))

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def read_meta(self, step: int) -> dict[str, Any]:
        """The JSON metadata of checkpoint ``step``; `CheckpointError` if unreadable."""
        try:
            out = self.manager.restore(int(step), args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            return dict(out.meta)
        except Exception as exc:  # noqa: BLE001 - any failure to read means corrupt
            raise CheckpointError(
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
        out = self._restore_trees(step, params=params, rest=rest, opt_state=opt_state)
        return out["params"], out["rest"], out["opt_state"], meta

    def restore_params(self, step: int, *, params: Any, rest: Any) -> tuple[Any, Any]:
        """Only the model state (for evaluation)."""
        out = self._restore_trees(step, params=params, rest=rest)
        return out["params"], out["rest"]

    def _restore_trees(self, step: int, **templates: Any) -> dict[str, Any]:
        """Restores the named trees of ``step`` shaped like ``templates`` (empty trees pass through)."""
        items = {k: ocp.args.StandardRestore(_abstract(t)) for k, t in templates.items() if _has_leaves(t)}
        try:
            out = self.manager.restore(int(step), args=ocp.args.Composite(**items))
        except Exception as exc:  # noqa: BLE001 - any failure means a different model or corruption
            raise CheckpointError(
                f"Checkpoint {self.directory / str(step)} does not match this model or is corrupt "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                "Start in a fresh run folder (hydra.run.dir=...) or delete the checkpoints folder."
            ) from None
        return {k: (out[k] if k in items else t) for k, t in templates.items()}

    def close(self) -> None:
        self.manager.close()


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
