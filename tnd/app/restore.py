"""A trained run back from its folder: the model of its latest intact checkpoint
(`restore_model`) and its evaluation with new settings (`evaluate_checkpoint`, what tnd-eval
does)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flax import nnx

from tnd.app.experiment import _positive, eval_env_config, evaluate
from tnd.envs import get_env
from tnd.models import build_model
from tnd.run_folder import PLUGINS_FILE
from tnd.training.checkpoint import Checkpointer, CheckpointError, DamagedCheckpointError
from tnd.training.config import EvalSpec, ExperimentSpec, from_dict
from tnd.training.plugins import import_run_plugins


def run_plugin_origins(run_dir: str | Path) -> dict[str, str]:
    """Where a run's plugin modules were imported from (``plugins.json``; {} when absent)."""
    path = Path(run_dir) / PLUGINS_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def restore_model(
    run_dir: str | Path, step: int | None = None, *, plugins: list[str] | tuple[str, ...] = (),
) -> tuple[nnx.Module, ExperimentSpec, dict[str, Any]]:
    """The trained model of a run folder (latest checkpoint), its spec and checkpoint meta.

    A run trained with plugin modules needs them again; they are imported only when named in
    ``plugins`` (the caller's consent: code named by a run folder is not run on its own).
    """

    ckdir = Path(run_dir) / "checkpoints"
    if not ckdir.is_dir():
        raise CheckpointError(f"No checkpoints in {Path(run_dir).absolute()}: expected a tnd-train run folder.")
    ckpt = Checkpointer(ckdir)

    def restore(at: int) -> tuple[nnx.Module, ExperimentSpec, dict[str, Any]]:
        meta = ckpt.read_meta(at)
        try:
            spec = from_dict(meta["config"])
            import_run_plugins(spec.plugins, plugins, run_plugin_origins(run_dir), run_dir=Path(run_dir).absolute())
            fp = meta["fingerprint"]
            model = build_model(fp["model"], obs_shape=tuple(fp["obs_shape"]), num_actions=int(fp["num_actions"]),
                                rngs=nnx.Rngs(int(spec.seed)), **fp["options"])
        except (KeyError, TypeError) as exc:
            raise DamagedCheckpointError(f"Checkpoint {ckdir / str(at)} has incomplete metadata ({exc}).") from None
        _, params, rest = nnx.split(model, nnx.Param, ...)
        params, rest = ckpt.restore_params(at, params=params, rest=rest)
        nnx.update(model, params, rest)
        return model, spec, meta

    try:
        if step is not None:
            return restore(step)
        if ckpt.latest_step() is None:
            raise CheckpointError(f"No complete checkpoint in {ckdir.absolute()}.")
        return ckpt.restore_intact(restore)[1]
    finally:
        ckpt.close()


def evaluate_checkpoint(
    run_dir: str | Path, eval_spec: EvalSpec, *, env_options: dict[str, Any] | None = None,
    plugins: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """Evaluates a run folder's latest checkpoint with new eval settings.

    ``env_options`` (if given) replace the training env's options; ``eval_spec.env_overrides``
    then apply on top (e.g. sticky actions); ``plugins``: as in `restore_model`. Returns the
    metrics with model, step, seed.
    """
    model, spec, meta = restore_model(run_dir, plugins=plugins)
    for name in ("num_games", "num_envs"):
        _positive(f"eval.{name}", getattr(eval_spec, name))
    env = get_env(spec.env.name)
    options = spec.env.options if env_options is None else env_options
    config = eval_env_config(env, options, eval_spec)
    t0 = time.perf_counter()
    metrics = evaluate(model, env, config, num_games=eval_spec.num_games, seed=eval_spec.seed,
                       num_envs=eval_spec.num_envs, progress=eval_spec.progress)
    return {
        "run_dir": str(Path(run_dir).absolute()), "model": spec.model.name, "env": spec.env.name,
        "seed": int(spec.seed), "checkpoint_step": int(meta["step"]), "eval_seed": int(eval_spec.seed),
        "env_config": env.config_dict(config), **metrics, "eval_seconds": time.perf_counter() - t0,
    }
