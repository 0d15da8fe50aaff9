"""The behavior-cloning train loop: resumable, deterministic, NaN-guarded, logged.

`train` runs ``spec.steps`` updates of a `SequenceModel` on device-resident `Windows`;
`train_seeds` runs several seeds of it as one jitted program (parameters stacked on a seed
axis, one vmapped step), each seed with its own run folder.
Everything that decides the result is a pure function of ``(seed, step)`` plus the saved
state, so a run interrupted at any point and resumed from its latest checkpoint ends with
bit-identical parameters to one never interrupted:

* batch ``k`` is drawn from ``fold_in(key(seed), k)`` inside the jitted step;
* params, model state (RNG streams), optimizer state and the step live in the checkpoint.

Time is accounted per step (`tnd.training.progress.StepClock`): ``host_fraction`` is the
share of the loop's time spent outside the jitted step.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.data.windows import Windows, WindowSampler
from tnd.training.checkpoint import CheckpointError, Checkpointer, check_config
from tnd.training.config import TrainSpec
from tnd.training.interrupts import check_interrupt
from tnd.training.logging import MetricsLogger
from tnd.training.optimizer import make_optimizer
from tnd.training.parallel import batch_sharding, data_mesh, replicate
from tnd.training.progress import StepClock, progress_display
from tnd.training.runtime import retain_freed_memory
from tnd.training.step import make_train_step
from tnd.training.validation import TrainSpecError, validate_train_spec


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
    """Whether something done every ``every`` steps (0: never) is due after ``step`` updates."""
    return every > 0 and step % every == 0


@dataclasses.dataclass
class SeedRun:
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
    member = SeedRun(model, int(seed), run_dir, fingerprint, config, evaluate)
    return train_seeds([member], windows, spec, class_weights=class_weights, tensorboard=tensorboard)[0]


def _stack(trees: list[Any]) -> Any:
    """Trees of equal structure -> one tree whose leaves have a leading seed axis ``[S]``."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _unstack(tree: Any, count: int) -> list[Any]:
    """A tree with a leading seed axis ``[S]`` -> ``S`` trees, one per seed."""
    return [jax.tree.map(lambda leaf, i=i: leaf[i], tree) for i in range(count)]


def train_seeds(
    members: list[SeedRun],
    windows: Windows,
    spec: TrainSpec,
    *,
    class_weights: np.ndarray,
    tensorboard: bool = True,
    until: int | None = None,
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
    ``until`` (default ``spec.steps``) stops after that many updates, with a checkpoint, on the
    schedule of ``spec.steps``: a later call with more data resumes there (DAgger's rounds).
    """
    validate_train_spec(spec)
    end = int(spec.steps if until is None else until)
    if not 0 < end <= int(spec.steps):
        raise TrainSpecError(f"until={until} must lie in 1..train.steps ({spec.steps}).")
    retain_freed_memory()
    seeds, graphdef, splits = _split_members(members)
    tx, schedule = make_optimizer(
        lr=spec.lr, steps=spec.steps, warmup_steps=spec.warmup_steps, min_lr_ratio=spec.min_lr_ratio,
        weight_decay=spec.weight_decay, clip_norm=spec.clip_norm,
    )
    params_each = [p for _, p, _ in splits]
    rest_each = [r for _, _, r in splits]
    opt_each = [tx.init(p) for p in params_each]
    runs = [_SeedRun(m, WindowSampler(seed=seed, batch_size=int(spec.batch_size))) for m, seed in zip(members, seeds)]
    for i, run in enumerate(runs):
        params_each[i], rest_each[i], opt_each[i] = _resume(run, params_each[i], rest_each[i], opt_each[i], spec)
    start = _common_start(runs)
    for run in runs:
        run.last_saved = start if start else None
        if run.member.run_dir is not None:
            run.logger = MetricsLogger(run.member.run_dir, resume_step=start, tensorboard=tensorboard)

    stacked = len(members) > 1
    pack = _stack if stacked else (lambda trees: trees[0])
    params, rest, opt_state = pack(params_each), pack(rest_each), pack(opt_each)
    data_key = pack([jax.random.key(seed) for seed in seeds])
    mesh = data_mesh(spec.devices, int(spec.batch_size))
    params, rest, opt_state = replicate((params, rest, opt_state), mesh)
    step_fn = make_train_step(graphdef, tx, schedule, batch_size=spec.batch_size, window=windows.length,
                              param_limit=float(spec.param_limit), batch_sharding=batch_sharding(mesh), stacked=stacked)
    training = _StackTraining(runs, spec, graphdef, step_fn, (params, rest, opt_state),
                              inputs=(replicate(windows.arrays(), mesh), jnp.asarray(class_weights, jnp.float32), data_key),
                              timesteps_per_step=spec.batch_size * windows.length * len(members), end=end)
    training.run(start)
    return training.results(start)


def _split_members(members: list[SeedRun]) -> tuple[list[int], Any, list[tuple[Any, Any, Any]]]:
    """The members' seeds, their shared graph definition and each model split into
    ``(graphdef, params, rest)``; refuses an empty stack, repeated seeds or models of
    different structure."""
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
    return seeds, graphdef, splits


@dataclasses.dataclass
class _SeedRun:
    """The host side of one seed of a stack: its member, its data sampler, its checkpointer and
    metrics logger (None without a run folder), what its checkpoint restored (the step, the
    training seconds of earlier sessions, the latest step's metrics), its evaluations and the
    last step it saved."""

    member: SeedRun
    sampler: WindowSampler
    checkpointer: Checkpointer | None = None
    logger: MetricsLogger | None = None
    start: int = 0
    prior_seconds: float = 0.0
    last: dict[str, float] = dataclasses.field(default_factory=dict)
    eval_history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    last_saved: int | None = None


def _resume(run: _SeedRun, params: Any, rest: Any, opt_state: Any, spec: TrainSpec) -> tuple[Any, Any, Any]:
    """Opens the seed's checkpoints (with a run folder) and restores its latest one: returns
    ``(params, rest, opt_state)``, restored or as given, and records the rest in ``run``.
    Refuses a folder whose recorded checkpoints are all gone (never starts over silently)."""
    member = run.member
    if member.run_dir is None:
        return params, rest, opt_state
    ckpt = run.checkpointer = Checkpointer(Path(member.run_dir) / "checkpoints", max_to_keep=spec.max_to_keep)
    if ckpt.latest_step() is None and ckpt.recorded_steps():
        raise CheckpointError(
            f"Every checkpoint this run saved is gone from {ckpt.directory} (it recorded steps "
            f"{', '.join(map(str, ckpt.recorded_steps()))}): restore them, or train afresh in another folder."
        )
    if ckpt.latest_step() is None:
        return params, rest, opt_state
    templates = dict(params=params, rest=rest, opt_state=opt_state, fingerprint=member.fingerprint)
    _, restored = ckpt.restore_intact(functools.partial(ckpt.restore, **templates))
    params, rest, opt_state, meta = restored
    check_config(meta.get("config") or {}, member.config or {}, ckpt.directory, allow=spec.resume_with_changes)
    run.sampler.load_state_dict(meta["data_iterator"])
    run.start = int(meta["step"])
    run.prior_seconds = float(meta.get("train_seconds", 0.0))
    run.last = dict(meta.get("last_metrics") or {})
    log.info("resumed from checkpoint %s", ckpt.directory / str(run.start))
    return params, rest, opt_state


def _common_start(runs: list[_SeedRun]) -> int:
    """The step every seed resumes from; refuses seeds whose checkpoints hold different steps."""
    starts = [run.start for run in runs]
    if len(set(starts)) > 1:
        where = ", ".join(f"seed {int(run.member.seed)}: step {run.start}" for run in runs)
        raise TrainSpecError(f"The stack's checkpoints are at different steps ({where}); resume these seeds as "
                             "separate runs, or delete the folders of the seeds that are behind.")
    return starts[0]


class _StackTraining:
    """The train loop of one stack of seeds: the jitted step on the stacked state (seed axis
    first; plain for one seed), then per seed the NaN guard, its logged row, its periodic
    evaluation and its checkpoint; Ctrl-C becomes `TrainingInterrupted`. ``inputs`` are the
    step's fixed arguments: the windows' arrays, the class weights ``[A]`` and the data keys."""

    def __init__(self, runs: list[_SeedRun], spec: TrainSpec, graphdef: Any, step_fn: Callable,
                 state: tuple[Any, Any, Any], *, inputs: tuple[Any, jax.Array, jax.Array], timesteps_per_step: int,
                 end: int | None = None):
        self.runs, self.spec, self.graphdef, self.step_fn = runs, spec, graphdef, step_fn
        self.end = int(spec.steps if end is None else end)  # the last update of this call
        self.params, self.rest, self.opt_state = state
        self.inputs = inputs
        self.count = len(runs)
        self.stacked = self.count > 1
        self.timesteps_per_step = timesteps_per_step
        self.progress = None
        self.clock: StepClock | None = None
        self.done = 0  # updates completed (what an interrupt reports)

    def each(self, tree: Any) -> list[Any]:
        """A stacked tree as one tree per seed."""
        return _unstack(tree, self.count) if self.stacked else [tree]

    def seconds_so_far(self, run: _SeedRun) -> float:
        """The seed's training seconds: earlier sessions' plus its share of this one's."""
        return run.prior_seconds + self.clock.training_seconds() / self.count

    def run(self, start: int) -> None:
        """Steps ``start + 1 .. end``; closes the progress display, checkpointers and loggers."""
        spec = self.spec
        self.progress = progress_display(spec, start, "train" if self.count == 1 else f"train {self.count} seeds")
        self.clock = StepClock()
        self.done = start
        try:
            for k in range(start, self.end):
                metrics = self.step(k, timed=k > start)
                self.after_step(k + 1, metrics)
        except KeyboardInterrupt:
            first = next((r.checkpointer for r in self.runs if r.checkpointer is not None), None)
            raise TrainingInterrupted(self.done, self.runs[0].last_saved,
                                      first.directory if first is not None else None) from None
        finally:
            self.close()

    def step(self, k: int, *, timed: bool) -> dict[str, np.ndarray]:
        """Update ``k`` (0-based) of every seed by the jitted step; its metrics on the host
        (leaves ``[S]`` for a stack of ``S`` seeds, scalars for one)."""
        t0 = time.perf_counter()
        self.params, self.rest, self.opt_state, metrics = self.step_fn(
            self.params, self.rest, self.opt_state, *self.inputs, jnp.asarray(k, jnp.int32)
        )
        self.done = k + 1
        metrics = jax.device_get(metrics)
        self.clock.stepped(t0, time.perf_counter(), timed=timed)
        return metrics

    def after_step(self, step: int, metrics: dict[str, np.ndarray]) -> None:
        """After ``step`` updates: each seed's NaN guard and metrics, its row, evaluation and checkpoint."""
        spec = self.spec
        for run, m in zip(self.runs, self.each(metrics)):
            if not bool(m["ok"]):
                who = f" (seed {int(run.member.seed)})" if self.stacked else ""
                raise NonFiniteLossError(_stopped(step, m, spec, run.checkpointer, run.last_saved, who))
            run.last = {key: float(v) for key, v in m.items() if key not in ("ok", "params_ok", "param_max")}
        rows: list[dict[str, Any] | None] = [None] * self.count
        if _every(step, spec.log_every) or step == self.end:
            rows = self.metric_rows(step)
        if _every(step, spec.eval_every):  # the last step too: curves end there
            te = time.perf_counter()
            self.evaluate(step, rows)
            self.clock.exclude(time.perf_counter() - te, evaluation=True)
        for run, row in zip(self.runs, rows):
            if row is not None and run.logger is not None:
                run.logger.log(row)
        if _every(step, spec.checkpoint_every) or step == self.end:
            ts = time.perf_counter()
            self.save(step)
            self.clock.exclude(time.perf_counter() - ts)
        if self.progress is not None:
            self.progress.update(1)
        check_interrupt()  # a Ctrl-C that a library swallowed (tnd.training.interrupts)

    def metric_rows(self, step: int) -> list[dict[str, Any]]:
        """Each seed's logged row at ``step`` (its metrics, throughput, host fraction); updates the progress display."""
        tput = self.clock.window_rate(self.timesteps_per_step)
        host = self.clock.host_fraction_so_far()
        rows = [{"step": step, **run.last, "timesteps_per_s": tput / self.count, "host_fraction": host}
                for run in self.runs]
        if self.progress is not None:
            self.progress.set_postfix(loss=f"{np.mean([run.last['loss'] for run in self.runs]):.4f}",
                                      acc=f"{np.mean([run.last['accuracy'] for run in self.runs]):.3f}",
                                      tps=f"{tput:,.0f}", refresh=False)
        return rows

    def evaluate(self, step: int, rows: list[dict[str, Any] | None]) -> None:
        """Each seed's ``evaluate`` at ``step``: kept in its history and added to its row as ``eval_*``."""
        for i, (run, p_i, r_i) in enumerate(zip(self.runs, self.each(self.params), self.each(self.rest))):
            if run.member.evaluate is None:
                continue
            scores = run.member.evaluate(nnx.merge(self.graphdef, p_i, r_i), step)
            run.eval_history.append({"step": step, **scores})
            rows[i] = {**(rows[i] or {"step": step}), **{f"eval_{key}": v for key, v in scores.items()}}

    def save(self, step: int) -> None:
        """A checkpoint of every seed with a run folder at ``step``: its state, data position, metrics and seconds."""
        states = zip(self.runs, self.each(self.params), self.each(self.rest), self.each(self.opt_state))
        for run, p_i, r_i, o_i in states:
            ckpt, m, seed = run.checkpointer, run.member, int(run.member.seed)
            if ckpt is None:
                continue
            run.sampler.position = step
            meta = {
                "step": step, "data_iterator": run.sampler.state_dict(), "seed": seed,
                "rng": {"data_key": f"fold_in(key({seed}), step)"},
                "fingerprint": m.fingerprint or {}, "config": m.config or {},
                "train_seconds": self.seconds_so_far(run), "last_metrics": run.last,
            }
            ckpt.save(step, params=p_i, rest=r_i, opt_state=o_i, meta=meta)
            run.last_saved = step
            log.info("saved checkpoint %s", ckpt.directory / str(step))

    def close(self) -> None:
        """Closes the progress display, waits for and closes the checkpointers, closes the loggers."""
        if self.progress is not None:
            self.progress.close()
        for run in self.runs:
            if run.checkpointer is not None:
                run.checkpointer.wait()
                run.checkpointer.close()
        for run in self.runs:
            if run.logger is not None:
                run.logger.close()

    def results(self, start: int) -> list[TrainResult]:
        """Writes each seed's parameters back into its model; its `TrainResult`."""
        clock = self.clock
        timed = clock.timed_steps
        host_fraction = clock.outside / (clock.inside + clock.outside) if timed else float("nan")
        tput = self.timesteps_per_step / self.count * timed / (clock.inside + clock.outside) if timed else float("nan")
        results = []
        for run, p_i, r_i in zip(self.runs, self.each(self.params), self.each(self.rest)):
            nnx.update(run.member.model, p_i, r_i)
            results.append(TrainResult(
                step=self.end, resumed_from=start, train_seconds=self.seconds_so_far(run),
                host_fraction=host_fraction, timesteps_per_s=tput, last_metrics=run.last,
                eval_history=run.eval_history,
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
