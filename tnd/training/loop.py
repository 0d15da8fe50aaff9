"""The behavior-cloning train loop: resumable, deterministic, NaN-guarded, logged.

`train` runs ``spec.steps`` updates of a `SequenceModel` on device-resident `Windows`;
`train_seeds` runs several seeds of it as one jitted program (parameters stacked on a seed
axis, one vmapped step), each seed with its own run folder.
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
import functools
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.data.windows import CLASS_BALANCE, Windows, WindowSampler
from tnd.training.checkpoint import CheckpointError, Checkpointer, check_config
from tnd.training.config import TrainSpec
from tnd.training.interrupts import check_interrupt
from tnd.training.logging import MetricsLogger
from tnd.training.optimizer import make_optimizer
from tnd.training.parallel import batch_sharding, data_mesh, replicate
from tnd.training.runtime import retain_freed_memory
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


class ProgressLines:
    """Training progress as plain lines on stderr, for output that is not a terminal (a log
    file, CI, a notebook), where a progress bar's carriage returns show nothing until the
    end: one line per logged row (every ``train.log_every`` steps, and the last step) with
    the step, loss, accuracy, steps per second and the time left. Has the methods of a
    ``tqdm`` bar that the loop uses."""

    def __init__(self, total: int, initial: int, desc: str, stream=None):
        self.total, self.n, self.desc = int(total), int(initial), desc
        self.stream = stream if stream is not None else sys.stderr
        self.fields: dict[str, str] = {}
        self.due = False
        self.t_last, self.n_last = time.perf_counter(), self.n

    def set_postfix(self, refresh: bool = False, **fields: str) -> None:
        """The latest metrics; the line that shows them is printed at the next `update`."""
        self.fields, self.due = {k: str(v) for k, v in fields.items()}, True

    def update(self, steps: int = 1) -> None:
        first = self.n == self.n_last  # the step that compiled: the rate is measured from its end
        self.n += int(steps)
        if first and not self.due:
            self.t_last, self.n_last = time.perf_counter(), self.n
        if self.due:
            self.due = False
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        now = time.perf_counter()
        rate = (self.n - self.n_last) / max(now - self.t_last, 1e-9)
        self.t_last, self.n_last = now, self.n
        left = (self.total - self.n) / rate if rate > 0 else float("nan")
        metrics = "".join(f", {key} {value}" for key, value in self.fields.items() if key != "tps")
        return (f"{self.desc}: step {self.n}/{self.total} ({100 * self.n / max(self.total, 1):.0f}%){metrics}, "
                f"{rate:.3g} steps/s, ETA {_duration(left)}")

    def close(self) -> None:
        self.stream.flush()


def _duration(seconds: float) -> str:
    """``95`` -> ``1 min 35 s``; ``nan`` -> ``?``."""
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def progress_display(spec: TrainSpec, start: int, desc: str):
    """What shows training progress (``train.progress``): a ``tqdm`` bar on a terminal,
    `ProgressLines` elsewhere; None with ``train.progress=false``."""
    if not spec.progress:
        return None
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=spec.steps, initial=start, desc=desc, dynamic_ncols=True)
    return ProgressLines(spec.steps, start, desc)


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


@dataclasses.dataclass
class Member:
    """One seed of a stack trained by `train_seeds`: its model (trained in place), seed and
    run folder. ``fingerprint``, ``config`` and ``evaluate`` are as in `train`."""

    model: nnx.Module
    seed: int
    run_dir: str | Path | None = None
    fingerprint: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    evaluate: Callable[[nnx.Module, int], dict[str, float]] | None = None


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
    member = Member(model, int(seed), run_dir, fingerprint, config, evaluate)
    return train_seeds([member], windows, spec, class_weights=class_weights, tensorboard=tensorboard)[0]


def _stack(trees: list[Any]) -> Any:
    """Trees of equal structure -> one tree whose leaves have a leading seed axis ``[S]``."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _unstack(tree: Any, count: int) -> list[Any]:
    return [jax.tree.map(lambda leaf, i=i: leaf[i], tree) for i in range(count)]


def train_seeds(
    members: list[Member],
    windows: Windows,
    spec: TrainSpec,
    *,
    class_weights: np.ndarray,
    tensorboard: bool = True,
) -> list[TrainResult]:
    """Trains seeds that differ only in seed as one jitted program (PureJaxRL's pattern).

    Parameters, optimizer states and data keys are stacked on a leading seed axis and one
    step, ``jax.vmap``-ed over it, updates every seed (`make_train_step` with ``stacked``).
    Each member keeps its own run folder: checkpoints, metrics, TensorBoard log, periodic
    evaluations. Its batches are drawn from ``fold_in(key(seed), step)`` exactly as a
    separate run draws them, so a seed trained in a stack ends equal to the same seed trained
    alone up to float summation order (``tests/test_seed_stack.py`` states the tolerance).
    A resumed stack resumes every seed from its own latest checkpoint; they must hold the
    same step. One member is the unchanged single-seed program (no vmap).
    Each `TrainResult`'s ``train_seconds`` is the stack's wall time divided by its size.
    """
    validate_train_spec(spec)
    retain_freed_memory()
    count = len(members)
    if count == 0:
        raise TrainSpecError("train_seeds needs at least one member.")
    seeds = [int(m.seed) for m in members]
    if len(set(seeds)) != count:
        raise TrainSpecError(f"The seeds of one stack must differ, got {seeds}.")
    splits = [nnx.split(m.model, nnx.Param, ...) for m in members]
    graphdef = splits[0][0]
    if any(g != graphdef for g, _, _ in splits[1:]):
        raise TrainSpecError(
            "Seeds trained as one program must have models of the same structure, but these differ "
            "(TND and the sparse RNN draw their graph per seed: fix it with graph.seed=<k>, or train the seeds "
            "as separate runs)."
        )
    tx, schedule = make_optimizer(
        lr=spec.lr, steps=spec.steps, warmup_steps=spec.warmup_steps, min_lr_ratio=spec.min_lr_ratio,
        weight_decay=spec.weight_decay, clip_norm=spec.clip_norm,
    )
    params_each = [p for _, p, _ in splits]
    rest_each = [r for _, _, r in splits]
    opt_each = [tx.init(p) for p in params_each]
    samplers = [WindowSampler(seed=seed, batch_size=int(spec.batch_size)) for seed in seeds]

    ckpts: list[Checkpointer | None] = [None] * count
    starts = [0] * count
    prior_seconds = [0.0] * count  # training wall time of earlier (interrupted) sessions
    last: list[dict[str, float]] = [{} for _ in members]  # the latest step's metrics (restored with a checkpoint)
    for i, m in enumerate(members):
        if m.run_dir is None:
            continue
        ckpt = ckpts[i] = Checkpointer(Path(m.run_dir) / "checkpoints", max_to_keep=spec.max_to_keep)
        if ckpt.latest_step() is None and ckpt.recorded_steps():  # never start over silently
            raise CheckpointError(
                f"Every checkpoint this run saved is gone from {ckpt.directory} (it recorded steps "
                f"{', '.join(map(str, ckpt.recorded_steps()))}): restore them, or train afresh in another folder."
            )
        if ckpt.latest_step() is not None:
            templates = dict(params=params_each[i], rest=rest_each[i], opt_state=opt_each[i], fingerprint=m.fingerprint)
            _, restored = ckpt.restore_intact(functools.partial(ckpt.restore, **templates))
            params_each[i], rest_each[i], opt_each[i], meta = restored
            check_config(meta.get("config") or {}, m.config or {}, ckpt.directory, allow=spec.resume_with_changes)
            samplers[i].load_state_dict(meta["data_iterator"])
            starts[i] = int(meta["step"])
            prior_seconds[i] = float(meta.get("train_seconds", 0.0))
            last[i] = dict(meta.get("last_metrics") or {})
            log.info("resumed from checkpoint %s", ckpt.directory / str(starts[i]))
    if len(set(starts)) > 1:
        where = ", ".join(f"seed {s}: step {k}" for s, k in zip(seeds, starts))
        raise TrainSpecError(f"The stack's checkpoints are at different steps ({where}); resume these seeds as "
                             "separate runs, or delete the folders of the seeds that are behind.")
    start = starts[0]
    last_saved = [start if start else None for _ in members]
    loggers = [MetricsLogger(m.run_dir, resume_step=start, tensorboard=tensorboard) if m.run_dir is not None else None
               for m in members]

    stacked = count > 1
    pack = _stack if stacked else (lambda trees: trees[0])
    params, rest, opt_state = pack(params_each), pack(rest_each), pack(opt_each)
    data_key = pack([jax.random.key(seed) for seed in seeds])
    mesh = data_mesh(spec.devices, int(spec.batch_size))
    params, rest, opt_state = replicate((params, rest, opt_state), mesh)
    step_fn = make_train_step(graphdef, tx, schedule, batch_size=spec.batch_size, window=windows.length,
                              param_limit=float(spec.param_limit), batch_sharding=batch_sharding(mesh), stacked=stacked)
    arrays = replicate(windows.arrays(), mesh)
    weights = jnp.asarray(class_weights, jnp.float32)
    timesteps_per_step = spec.batch_size * windows.length * count

    def each(tree: Any) -> list[Any]:
        return _unstack(tree, count) if stacked else [tree]

    def seconds_so_far(i: int) -> float:
        return prior_seconds[i] + (time.perf_counter() - t_begin - eval_seconds) / count

    def save(step: int) -> None:
        for i, (m, ckpt, p_i, r_i, o_i) in enumerate(zip(members, ckpts, each(params), each(rest), each(opt_state))):
            if ckpt is None:
                continue
            samplers[i].position = step
            meta = {
                "step": step, "data_iterator": samplers[i].state_dict(), "seed": seeds[i],
                "rng": {"data_key": f"fold_in(key({seeds[i]}), step)"},
                "fingerprint": m.fingerprint or {}, "config": m.config or {},
                "train_seconds": seconds_so_far(i), "last_metrics": last[i],
            }
            ckpt.save(step, params=p_i, rest=r_i, opt_state=o_i, meta=meta)
            last_saved[i] = step
            log.info("saved checkpoint %s", ckpt.directory / str(step))

    progress = progress_display(spec, start, "train" if count == 1 else f"train {count} seeds")

    inside = outside = 0.0  # seconds in / outside the jitted step (steps after the first)
    timed_steps = 0
    window_time, window_steps = 0.0, 0
    eval_history: list[list[dict[str, Any]]] = [[] for _ in members]
    eval_seconds = 0.0
    t_begin = time.perf_counter()
    done = start  # updates completed (what an interrupt reports)
    try:
        t_prev = t_begin
        excluded = 0.0  # eval + checkpoint time since t_prev, not counted as loop overhead
        for k in range(start, spec.steps):
            step = k + 1  # number of updates done after this iteration
            t0 = time.perf_counter()
            params, rest, opt_state, metrics = step_fn(
                params, rest, opt_state, arrays, weights, data_key, jnp.asarray(k, jnp.int32)
            )
            done = step
            metrics = jax.device_get(metrics)
            t1 = time.perf_counter()
            if k > start:  # the first step compiles
                inside += t1 - t0
                outside += max(0.0, t0 - t_prev - excluded)
                timed_steps += 1
            window_time += t1 - t_prev - excluded
            window_steps += 1
            t_prev, excluded = t1, 0.0
            per_seed = each(metrics)
            for i, m in enumerate(per_seed):
                if not bool(m["ok"]):
                    raise NonFiniteLossError(_stopped(step, m, spec, ckpts[i], last_saved[i],
                                                      f" (seed {seeds[i]})" if stacked else ""))
                last[i] = {key: float(v) for key, v in m.items() if key not in ("ok", "params_ok", "param_max")}
            rows: list[dict[str, Any] | None] = [None] * count
            if _every(step, spec.log_every) or step == spec.steps:
                tput = timesteps_per_step * window_steps / max(window_time, 1e-9)
                host = outside / max(inside + outside, 1e-12) if timed_steps else float("nan")
                rows = [{"step": step, **last[i], "timesteps_per_s": tput / count, "host_fraction": host}
                        for i in range(count)]
                window_time, window_steps = 0.0, 0
                if progress is not None:
                    progress.set_postfix(loss=f"{np.mean([x['loss'] for x in last]):.4f}",
                                         acc=f"{np.mean([x['accuracy'] for x in last]):.3f}",
                                         tps=f"{tput:,.0f}", refresh=False)
            if _every(step, spec.eval_every):  # the last step too: curves end there
                te = time.perf_counter()
                for i, (m, p_i, r_i) in enumerate(zip(members, each(params), each(rest))):
                    if m.evaluate is None:
                        continue
                    scores = m.evaluate(nnx.merge(graphdef, p_i, r_i), step)
                    eval_history[i].append({"step": step, **scores})
                    rows[i] = {**(rows[i] or {"step": step}), **{f"eval_{key}": v for key, v in scores.items()}}
                dt = time.perf_counter() - te
                eval_seconds += dt
                excluded += dt
            for logger, row in zip(loggers, rows):
                if row is not None and logger is not None:
                    logger.log(row)
            if _every(step, spec.checkpoint_every) or step == spec.steps:
                ts = time.perf_counter()
                save(step)
                excluded += time.perf_counter() - ts
            if progress is not None:
                progress.update(1)
            check_interrupt()  # a Ctrl-C that a library swallowed (tnd.training.interrupts)
    except KeyboardInterrupt:
        first = next((c for c in ckpts if c is not None), None)
        raise TrainingInterrupted(done, last_saved[0], first.directory if first is not None else None) from None
    finally:
        if progress is not None:
            progress.close()
        for ckpt in ckpts:
            if ckpt is not None:
                ckpt.wait()
                ckpt.close()
        for logger in loggers:
            if logger is not None:
                logger.close()

    host_fraction = outside / (inside + outside) if timed_steps else float("nan")
    tput = timesteps_per_step / count * timed_steps / (inside + outside) if timed_steps else float("nan")
    results = []
    for i, (m, p_i, r_i) in enumerate(zip(members, each(params), each(rest))):
        nnx.update(m.model, p_i, r_i)
        results.append(TrainResult(
            step=spec.steps, resumed_from=start, train_seconds=seconds_so_far(i), host_fraction=host_fraction,
            timesteps_per_s=tput, last_metrics=last[i], eval_history=eval_history[i],
        ))
    return results


def _stopped(step: int, m: dict[str, Any], spec: TrainSpec, ckpt: Checkpointer | None, last_saved: int | None,
             who: str) -> str:
    """The message of a run stopped at ``step`` because its update was not applied (``m["ok"]`` false)."""
    where = f"{ckpt.directory}/{last_saved}" if ckpt is not None and last_saved else "none saved"
    loss_ok = np.isfinite(m["loss"]) and np.isfinite(m["grad_norm"])
    what = (f"the loss became non-finite (loss={float(m['loss'])}, grad_norm={float(m['grad_norm'])})"
            if not loss_ok else
            f"the update would make the parameters {'non-finite' if not np.isfinite(m['param_max']) else 'diverge'} "
            f"(largest |parameter| {float(m['param_max']):.3g}, train.param_limit {spec.param_limit:g})")
    return (f"Training stopped at step {step}{who}: {what}; the update was not applied. "
            f"Last good checkpoint: {where}. Lower train.lr, set train.clip_norm, or check the data.")
