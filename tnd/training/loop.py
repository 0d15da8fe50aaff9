"""The behavior-cloning train loop: resumable, deterministic, NaN-guarded, logged.

`train` runs ``spec.steps`` updates of a `SequenceModel` on device-resident `Windows`.
Everything that decides the result is a pure function of ``(seed, step)`` plus the saved
state, so a run interrupted at any point and resumed from its latest checkpoint ends with
bit-identical parameters to one never interrupted:

* batch ``k`` is drawn from ``fold_in(key(seed), k)`` inside the jitted step;
* params, model state (RNG streams), optimizer state and the step live in the checkpoint.

Time is accounted per step: ``inside`` is dispatch to ``block_until_ready`` of the jitted
step; everything else in the loop body (sampling bookkeeping, logging, progress bar) is
``outside``. ``host_fraction = outside / (inside + outside)``, excluding the first
(compiling) step, evaluations and checkpoint saves.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.data.windows import CLASS_BALANCE, Windows, WindowSampler
from tnd.training.checkpoint import Checkpointer, check_config
from tnd.training.config import TrainSpec
from tnd.training.logging import MetricsLogger
from tnd.training.optimizer import make_optimizer
from tnd.training.parallel import batch_sharding, data_mesh, replicate
from tnd.training.step import make_train_step


log = logging.getLogger(__name__)


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class TrainingInterrupted(Exception):
    """Ctrl-C (KeyboardInterrupt) during training: where it stopped and what was saved.

    Not a ``ValueError``: nothing was wrong with the input. ``step`` is the number of
    updates done; ``checkpoint`` the last saved step (None: nothing saved in this folder).
    """

    def __init__(self, step: int, checkpoint: int | None, directory: Path | None):
        self.step, self.checkpoint, self.directory = int(step), checkpoint, directory
        saved = f"step {checkpoint} in {directory}" if checkpoint else "none"
        super().__init__(f"interrupted at step {self.step}; last checkpoint: {saved}")


class TrainSpecError(ValueError):
    """An invalid training setting (non-positive size, unknown choice)."""


def validate_train_spec(spec: TrainSpec) -> None:
    """One readable error for each invalid setting."""
    for name in ("steps", "batch_size", "window"):
        if int(getattr(spec, name)) <= 0:
            raise TrainSpecError(f"train.{name} must be positive, got {getattr(spec, name)}.")
    if not spec.lr > 0:
        raise TrainSpecError(f"train.lr must be positive, got {spec.lr}.")
    for name in ("warmup_steps", "log_every", "eval_every", "checkpoint_every"):
        if int(getattr(spec, name)) < 0:
            raise TrainSpecError(f"train.{name} must be >= 0, got {getattr(spec, name)}.")
    for name in ("weight_decay", "clip_norm"):
        value = getattr(spec, name)
        if not (math.isfinite(value) and value >= 0):
            raise TrainSpecError(f"train.{name} must be a finite number >= 0, got {value}.")
    if not (math.isfinite(spec.min_lr_ratio) and 0 <= spec.min_lr_ratio <= 1):
        raise TrainSpecError(f"train.min_lr_ratio must lie in [0, 1] (the final fraction of train.lr), got {spec.min_lr_ratio}.")
    if not (math.isfinite(spec.lr)):
        raise TrainSpecError(f"train.lr must be finite, got {spec.lr}.")
    if int(spec.max_to_keep) < 1:
        raise TrainSpecError(f"train.max_to_keep must be >= 1 (checkpoints kept for resuming), got {spec.max_to_keep}.")
    if int(spec.warmup_steps) > int(spec.steps):
        raise TrainSpecError(f"train.warmup_steps ({spec.warmup_steps}) must not exceed train.steps ({spec.steps}).")
    if not spec.param_limit > 0:
        raise TrainSpecError(f"train.param_limit must be positive, got {spec.param_limit}.")
    if spec.class_balance not in CLASS_BALANCE:
        raise TrainSpecError(
            f"Unknown train.class_balance '{spec.class_balance}'. Valid choices: {', '.join(CLASS_BALANCE)}."
        )


@dataclasses.dataclass
class TrainResult:
    """What `train` returns (the trained model is updated in place)."""

    step: int
    resumed_from: int
    train_seconds: float
    host_fraction: float
    timesteps_per_s: float
    last_metrics: dict[str, float]
    eval_history: list[dict[str, Any]]


def _every(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


def train(
    model: nnx.Module,
    windows: Windows,
    spec: TrainSpec,
    *,
    seed: int,
    class_weights: np.ndarray,
    run_dir: str | Path | None = None,
    fingerprint: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    evaluate: Callable[[nnx.Module, int], dict[str, float]] | None = None,
    tensorboard: bool = True,
) -> TrainResult:
    """Trains ``model`` in place; resumes from ``<run_dir>/checkpoints`` when present.

    ``evaluate(model, step) -> metrics`` runs every ``spec.eval_every`` steps (the cheap
    closed-loop setting). ``fingerprint`` identifies the model so that a checkpoint from a
    different one is refused; ``config`` is stored with each checkpoint.
    Raises `NonFiniteLossError` naming the step when the loss turns non-finite.
    """
    validate_train_spec(spec)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx, schedule = make_optimizer(
        lr=spec.lr, steps=spec.steps, warmup_steps=spec.warmup_steps, min_lr_ratio=spec.min_lr_ratio,
        weight_decay=spec.weight_decay, clip_norm=spec.clip_norm,
    )
    opt_state = tx.init(params)
    sampler = WindowSampler(seed=int(seed), batch_size=int(spec.batch_size))

    ckpt = None
    start = 0
    prior_seconds = 0.0  # training wall time of earlier (interrupted) sessions
    last: dict[str, float] = {}  # the latest step's metrics (restored with a checkpoint)
    if run_dir is not None:
        ckpt = Checkpointer(Path(run_dir) / "checkpoints", max_to_keep=spec.max_to_keep)
        if ckpt.latest_step() is not None:
            _, (params, rest, opt_state, meta) = ckpt.restore_intact(lambda step: ckpt.restore(
                step, params=params, rest=rest, opt_state=opt_state, fingerprint=fingerprint))
            check_config(meta.get("config") or {}, config or {}, ckpt.directory, allow=spec.resume_with_changes)
            sampler.load_state_dict(meta["data_iterator"])
            start = int(meta["step"])
            prior_seconds = float(meta.get("train_seconds", 0.0))
            last = dict(meta.get("last_metrics") or {})
            log.info("resumed from checkpoint %s", ckpt.directory / str(start))
    last_saved = start if start else None
    logger = MetricsLogger(run_dir, resume_step=start, tensorboard=tensorboard) if run_dir is not None else None

    mesh = data_mesh(spec.devices, int(spec.batch_size))
    params, rest, opt_state = replicate((params, rest, opt_state), mesh)
    step_fn = make_train_step(graphdef, tx, schedule, batch_size=spec.batch_size, window=windows.length,
                              param_limit=float(spec.param_limit), batch_sharding=batch_sharding(mesh))
    arrays = replicate(windows.arrays(), mesh)
    weights = jnp.asarray(class_weights, jnp.float32)
    data_key = jax.random.key(int(seed))
    timesteps_per_step = spec.batch_size * windows.length

    def save(step: int) -> None:
        nonlocal last_saved
        if ckpt is None:
            return
        sampler.position = step
        meta = {
            "step": step, "data_iterator": sampler.state_dict(), "seed": int(seed),
            "rng": {"data_key": f"fold_in(key({int(seed)}), step)"},
            "fingerprint": fingerprint or {}, "config": config or {},
            "train_seconds": prior_seconds + time.perf_counter() - t_begin - eval_seconds,
            "last_metrics": last,
        }
        ckpt.save(step, params=params, rest=rest, opt_state=opt_state, meta=meta)
        last_saved = step
        log.info("saved checkpoint %s", ckpt.directory / str(step))

    def merged() -> nnx.Module:
        return nnx.merge(graphdef, params, rest)

    progress = None
    if spec.progress:
        from tqdm.auto import tqdm

        progress = tqdm(total=spec.steps, initial=start, desc="train", dynamic_ncols=True)

    inside = outside = 0.0  # seconds in / outside the jitted step (steps after the first)
    timed_steps = 0
    window_time, window_steps = 0.0, 0
    eval_history: list[dict[str, Any]] = []
    eval_seconds = 0.0
    t_begin = time.perf_counter()
    done = start  # updates completed (what an interrupt reports)
    try:
        t_prev = t_begin
        excluded = 0.0  # eval + checkpoint time since t_prev, not counted as loop overhead
        for k in range(start, spec.steps):
            step = k + 1  # number of updates done after this iteration
            t0 = time.perf_counter()
            params, rest, opt_state, m = step_fn(
                params, rest, opt_state, arrays, weights, data_key, jnp.asarray(k, jnp.int32)
            )
            done = step
            m = jax.device_get(m)
            t1 = time.perf_counter()
            if k > start:  # the first step compiles
                inside += t1 - t0
                outside += max(0.0, t0 - t_prev - excluded)
                timed_steps += 1
            window_time += t1 - t_prev - excluded
            window_steps += 1
            t_prev, excluded = t1, 0.0
            if not bool(m["ok"]):
                where = f"{ckpt.directory}/{last_saved}" if ckpt is not None and last_saved else "none saved"
                loss_ok = np.isfinite(m["loss"]) and np.isfinite(m["grad_norm"])
                what = (f"the loss became non-finite (loss={float(m['loss'])}, grad_norm={float(m['grad_norm'])})"
                        if not loss_ok else
                        f"the update would make the parameters {'non-finite' if not np.isfinite(m['param_max']) else 'diverge'} "
                        f"(largest |parameter| {float(m['param_max']):.3g}, train.param_limit {spec.param_limit:g})")
                raise NonFiniteLossError(
                    f"Training stopped at step {step}: {what}; the update was not applied. "
                    f"Last good checkpoint: {where}. Lower train.lr, set train.clip_norm, or check the data."
                )
            last = {key: float(v) for key, v in m.items() if key not in ("ok", "params_ok", "param_max")}
            row = None
            if _every(step, spec.log_every) or step == spec.steps:
                tput = timesteps_per_step * window_steps / max(window_time, 1e-9)
                host = outside / max(inside + outside, 1e-12) if timed_steps else float("nan")
                row = {"step": step, **last, "timesteps_per_s": tput, "host_fraction": host}
                window_time, window_steps = 0.0, 0
                if progress is not None:
                    progress.set_postfix(loss=f"{last['loss']:.4f}", acc=f"{last['accuracy']:.3f}",
                                         tps=f"{tput:,.0f}", refresh=False)
            if evaluate is not None and _every(step, spec.eval_every):  # the last step too: curves end there
                te = time.perf_counter()
                metrics = evaluate(merged(), step)
                dt = time.perf_counter() - te
                eval_seconds += dt
                excluded += dt
                eval_history.append({"step": step, **metrics})
                row = {**(row or {"step": step}), **{f"eval_{key}": v for key, v in metrics.items()}}
            if row is not None and logger is not None:
                logger.log(row)
            if _every(step, spec.checkpoint_every) or step == spec.steps:
                ts = time.perf_counter()
                save(step)
                excluded += time.perf_counter() - ts
            if progress is not None:
                progress.update(1)
    except KeyboardInterrupt:
        raise TrainingInterrupted(done, last_saved, ckpt.directory if ckpt is not None else None) from None
    finally:
        if progress is not None:
            progress.close()
        if ckpt is not None:
            ckpt.wait()
            ckpt.close()
        if logger is not None:
            logger.close()
    train_seconds = prior_seconds + time.perf_counter() - t_begin - eval_seconds

    nnx.update(model, params, rest)
    host_fraction = outside / (inside + outside) if timed_steps else float("nan")
    tput = timesteps_per_step * timed_steps / (inside + outside) if timed_steps else float("nan")
    return TrainResult(
        step=spec.steps, resumed_from=start, train_seconds=train_seconds, host_fraction=host_fraction,
        timesteps_per_s=tput, last_metrics=last, eval_history=eval_history,
    )
