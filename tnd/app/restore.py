"""A trained run back from its folder: the model of its latest intact checkpoint
(`restore_model`) and its evaluation with new settings (`evaluate_checkpoint`, what tnd-eval
does)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flax import nnx

from tnd.app.experiment import eval_env_config, evaluate
from tnd.app.spec import check_positive
from tnd.envs import get_env
from tnd.evaluation.table.runs import HYDRA_RECORD_FILES, read_hydra_file
from tnd.models import build_model
from tnd.run_folder import PLUGINS_FILE, SUMMARY_FILE, eval_metrics, stacked_seed
from tnd.training.checkpoint import Checkpointer, CheckpointError, DamagedCheckpointError
from tnd.training.config import EvalSpec, ExperimentSpec, check_seed, from_dict
from tnd.training.plugins import import_plugins, import_run_plugins


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
    Every module named in ``plugins`` is imported first, as tnd-train imports its own: one
    that cannot be imported is refused the same way everywhere (`PluginError`).
    """

    origins = run_plugin_origins(run_dir)
    import_plugins([m for m in plugins if m not in origins])  # the run's own: imported below, with where they were
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"Run folder {Path(run_dir).absolute()} does not exist: give a tnd-train run folder "
                              "(one that holds checkpoints/).")
    check_run_record(run_dir)
    ckdir = Path(run_dir) / "checkpoints"
    if not ckdir.is_dir():
        seeds = sorted((d for d in Path(run_dir).iterdir() if stacked_seed(d.name) is not None and (d / "checkpoints").is_dir()),
                       key=lambda d: stacked_seed(d.name))
        hint = (f" It holds the run folders of a seeds=[...] job: give one of them, e.g. {seeds[0].absolute()}."
                if seeds else "")
        raise CheckpointError(f"No checkpoints in {Path(run_dir).absolute()}: expected a tnd-train run folder.{hint}")
    ckpt = Checkpointer(ckdir)

    def restore(at: int) -> tuple[nnx.Module, ExperimentSpec, dict[str, Any]]:
        meta = ckpt.read_meta(at)
        try:
            spec = from_dict(meta["config"])
            import_run_plugins(spec.plugins, plugins, origins, run_dir=Path(run_dir).absolute())
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
        return ckpt.restore_intact(restore, recorded=summary_steps(run_dir))[1]
    finally:
        ckpt.close()


def check_run_record(run_dir: str | Path) -> None:
    """`RunRecordError` (one line naming the file) when a file of the run's ``.hydra/``
    record is malformed YAML or holds a tag that is not plain data (``!!python/...``): the
    folder was damaged or altered, so it is not evaluated as if it were the run it names."""
    for name in HYDRA_RECORD_FILES:
        read_hydra_file(Path(run_dir) / ".hydra" / name)


def summary_steps(run_dir: str | Path) -> dict[int, str]:
    """``{step: why}`` for the step the run's ``summary.json`` says it ended on (a finished run
    checkpoints its last step): a record that a deleted step folder is checked against.
    {} when there is no readable summary."""
    path = Path(run_dir) / SUMMARY_FILE
    try:
        step = json.loads(path.read_text()).get("train_steps")
    except (OSError, ValueError, AttributeError):
        return {}
    return {step: f"{path} says the run ended there"} if isinstance(step, int) and step > 0 else {}


def evaluate_checkpoint(
    run_dir: str | Path, eval_spec: EvalSpec, *, env_options: dict[str, Any] | None = None,
    plugins: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """Evaluates a run folder's latest checkpoint with new eval settings.

    ``env_options`` (if given) replace those options of the training env (the others stay
    as trained; an unknown option fails with the valid ones); ``eval_spec.env_overrides``
    then apply on top (e.g. sticky actions); ``plugins``: as in `restore_model`. An
    evaluation whose games would not fit in memory is refused first (by `evaluate`).
    Returns the metrics with model, step, seed.
    """
    for name in ("num_games", "num_envs"):
        check_positive(f"eval.{name}", getattr(eval_spec, name))
    check_seed("eval.seed", eval_spec.seed)
    model, spec, meta = restore_model(run_dir, plugins=plugins)
    env = get_env(spec.env.name)
    config = eval_env_config(env, {**dict(spec.env.options), **dict(env_options or {})}, eval_spec)
    t0 = time.perf_counter()
    metrics = evaluate(model, env, config, num_games=eval_spec.num_games, seed=eval_spec.seed,
                       num_envs=eval_spec.num_envs, progress=eval_spec.progress)
    return {
        "run_dir": str(Path(run_dir).absolute()), "model": spec.model.name, "env": spec.env.name,
        "seed": int(spec.seed), "checkpoint_step": int(meta["step"]), "eval_seed": int(eval_spec.seed),
        "env_config": env.config_dict(config), **eval_metrics(metrics), "eval_seconds": time.perf_counter() - t0,
    }
