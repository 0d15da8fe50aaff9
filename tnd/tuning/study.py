"""One model's Optuna study: shared storage, the same sampler and pruner for every model.

    study = open_study(settings)                       # created, or loaded to resume
    run_study(study, settings, space, run_trial)       # until settings.n_trials are finished
    tuned_config(study, space)                         # the winner as a config dict

Equal effort: every model's study stops at the same number of *finished* trials
(complete or pruned; failed ones are retried, not counted) with the same TPE sampler seed
and the same pruner. The default pruner is Hyperband: trials train as long as the table's
runs, and successive-halving brackets stop the weaker ones at ``min_resource``,
``min_resource * reduction_factor``, ... training steps, so the budget goes to promising
trials while the winner is chosen on its score at full length. Storage is an SQLite file (``*.db``) or an Optuna journal
file (any other name): several processes or machines sharing the file work on one study.
With SQLite a trial whose process was killed stops sending heartbeats and is failed and
re-queued with the same parameters after ``grace_seconds``; rerunning the command resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from tnd.tuning.space import SearchSpace

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
PRUNERS = ("hyperband", "successive_halving", "median", "none")

# run_trial(overrides, trial_number, report) -> (objective value, extra attributes);
# report(step, value) raises optuna.TrialPruned when the pruner stops the trial
RunTrial = Callable[[list[str], int, Callable[[int, float], None]], tuple[float, dict[str, Any]]]


class TuneError(ValueError):
    """Invalid study settings, or a study with nothing to report."""


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """How one study runs (the same for every model, so tuning effort is equal)."""

    name: str
    storage: str
    n_trials: int = 16
    sampler_seed: int = 0
    n_startup_trials: int = 4       # TPE's random trials (and the median pruner's: no pruning before)
    pruner: str = "hyperband"       # hyperband | successive_halving | median | none
    min_resource: int = 500         # hyperband / successive halving: the first rung, in training steps
    max_resource: int = 3000        # hyperband: a full trial's training steps (the trial's train.steps)
    reduction_factor: int = 3       # hyperband / successive halving: 1 in this many trials goes on
    n_warmup_steps: int = 0         # median pruner: no pruning before this training step
    heartbeat_seconds: int = 60     # SQLite storage: a running trial's heartbeat
    grace_seconds: int = 180        # ... and how long without one before it is failed and re-queued
    max_failures: int = 8           # stop when this many trials in a row failed

    def __post_init__(self):
        if int(self.n_trials) < 1:
            raise TuneError(f"study.n_trials must be >= 1, got {self.n_trials}.")
        if not self.name:
            raise TuneError("study.name is empty.")
        if self.pruner not in PRUNERS:
            raise TuneError(f"study.pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}.")
        if not 0 < int(self.min_resource) <= int(self.max_resource):
            raise TuneError(f"study.min_resource must be in 1..max_resource ({self.max_resource}), "
                            f"got {self.min_resource}.")
        if int(self.reduction_factor) < 2:
            raise TuneError(f"study.reduction_factor must be >= 2, got {self.reduction_factor}.")

    def make_pruner(self) -> optuna.pruners.BasePruner:
        """The study's pruner (the same for every model's study)."""
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=int(self.min_resource),
                                                  max_resource=int(self.max_resource),
                                                  reduction_factor=int(self.reduction_factor))
        if self.pruner == "successive_halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=int(self.min_resource),
                                                          reduction_factor=int(self.reduction_factor))
        if self.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=int(self.n_startup_trials),
                                               n_warmup_steps=int(self.n_warmup_steps))
        return optuna.pruners.NopPruner()

    def describe_pruner(self) -> str:
        """The pruner in words, for summaries and tuned files."""
        if self.pruner in ("hyperband", "successive_halving"):
            name = "Hyperband" if self.pruner == "hyperband" else "SuccessiveHalving"
            top = f", max_resource={self.max_resource}" if self.pruner == "hyperband" else ""
            return f"{name}(min_resource={self.min_resource}{top}, reduction_factor={self.reduction_factor})"
        if self.pruner == "median":
            return f"Median(n_startup_trials={self.n_startup_trials}, n_warmup_steps={self.n_warmup_steps})"
        return "none"


def _storage(settings: StudySettings):
    path = Path(settings.storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's words
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                f"sqlite:///{path.absolute()}", heartbeat_interval=int(settings.heartbeat_seconds),
                grace_period=int(settings.grace_seconds),
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
            )
    return JournalStorage(JournalFileBackend(str(path)))


@contextlib.contextmanager
def _creation_lock(storage: str) -> Iterator[None]:
    """Serialises creating the storage and the study among workers on this machine: two
    workers starting together would both create Optuna's tables (an IntegrityError)."""
    path = Path(storage).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks until the other worker has created it
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_study(settings: StudySettings, worker: int = 0) -> optuna.Study:
    """The study ``settings.name`` in ``settings.storage`` (created, or loaded to resume).

    Several workers may open it at once (``tnd-tune -m worker=0,1``); they share its trials.
    Worker ``k`` samples with seed ``sampler_seed + k`` (workers would otherwise propose the
    same first trials); worker 0 alone is the single-worker study.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # tnd-tune prints its own line per trial
    with _creation_lock(settings.storage):
        storage = _storage(settings)
        return optuna.create_study(
            study_name=settings.name, storage=storage, direction="maximize", load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=sampler_seed(settings, worker, _trials_so_far(storage, settings.name)),
                                               n_startup_trials=int(settings.n_startup_trials)),
            pruner=settings.make_pruner(),
        )


def sampler_seed(settings: StudySettings, worker: int, trials_so_far: int) -> int:
    """The sampler's seed: from the study's seed, the worker and the trials already in the study.
    A resumed study continues with new draws instead of proposing its first trials again (a
    sampler seeded alike at every start repeats its random start-up sequence)."""
    if trials_so_far == 0:
        return int(settings.sampler_seed) + int(worker)
    entropy = [int(settings.sampler_seed), int(worker), int(trials_so_far)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def _trials_so_far(storage, name: str) -> int:
    """How many trials the study ``name`` already has in ``storage`` (0 for a new study)."""
    try:
        return len(optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False))
    except KeyError:
        return 0


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


def counted_trials(study: optuna.Study, n_trials: int) -> list[optuna.trial.FrozenTrial]:
    """The first ``n_trials`` trials to finish: the study's equal-effort budget. With several
    workers, trials still running when the budget is reached may finish too; they are kept
    in the study but not counted, so every model's winner comes from the same number."""
    done = sorted(finished_trials(study), key=lambda t: (t.datetime_complete, t.number))
    return done[:int(n_trials)]


def run_study(
    study: optuna.Study, settings: StudySettings, space: SearchSpace, run_trial: RunTrial,
    *, log: Callable[[str], None] = print,
) -> optuna.Study:
    """Runs trials until ``settings.n_trials`` are finished (counting earlier sessions' trials)."""

    def objective(trial: optuna.Trial) -> float:
        values = space.sample(trial)

        def report(step: int, value: float) -> None:
            trial.report(float(value), int(step))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (validation catch rate {value:.3f})")

        value, attrs = run_trial(space.overrides(values), trial.number, report)
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        if not math.isfinite(value):
            raise TuneError(f"trial {trial.number}: objective is {value}")
        return float(value)

    started, done_before = time.perf_counter(), len(finished_trials(study))

    def announce(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """One progress line per trial: state, value, count, best so far, ETA of this worker."""
        done = len(finished_trials(study))
        best = _best(study)
        value = "-" if trial.value is None else f"{trial.value:.3f}"
        per_trial = (time.perf_counter() - started) / max(1, done - done_before)
        eta = max(0, settings.n_trials - done) * per_trial
        log(f"trial {trial.number} {trial.state.name.lower()}: {value}  [{done}/{settings.n_trials} finished, "
            f"best {best.value if best else float('nan'):.3f}, ETA {eta / 60:.0f} min]  {trial.params}")

    remaining = int(settings.n_trials) - len(finished_trials(study))
    if remaining <= 0:
        log(f"study '{settings.name}' already has {settings.n_trials} finished trials")
        return study
    limit = _FailureLimit(int(settings.max_failures))
    study.optimize(  # until n_trials are finished: failed trials (e.g. shapes off the budget) do not count
        objective, n_trials=None, catch=(ValueError,),
        callbacks=[MaxTrialsCallback(int(settings.n_trials), states=FINISHED), announce, limit],
        gc_after_trial=True,
    )
    if limit.tripped:
        raise TuneError(f"Study '{settings.name}' stopped: {limit.limit} trials in a row failed (see the log; a search "
                        f"space that cannot be trained?) with {len(finished_trials(study))} of {settings.n_trials} "
                        "finished. Fix the cause and rerun the command to resume.")
    return study


class _FailureLimit:
    """Stops a study whose trials keep failing: ``limit`` failures in a row (a broken search
    space, not the occasional shape that misses the parameter budget)."""

    def __init__(self, limit: int):
        self.limit, self.in_a_row, self.tripped = limit, 0, False

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.in_a_row = self.in_a_row + 1 if trial.state == TrialState.FAIL else 0
        if self.in_a_row >= self.limit:
            self.tripped = True
            study.stop()


def _best(study: optuna.Study, n_trials: int | None = None) -> optuna.trial.FrozenTrial | None:
    """The best complete trial (among the `counted_trials` when ``n_trials`` is given)."""
    pool = study.get_trials(deepcopy=False) if n_trials is None else counted_trials(study, n_trials)
    complete = [t for t in pool if t.state == TrialState.COMPLETE]
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def study_summary(study: optuna.Study, settings: StudySettings) -> dict[str, Any]:
    """Counts by state, the best trial's value, parameters and recorded attributes."""
    counted = {t.number for t in counted_trials(study, settings.n_trials)}
    counts = {state.name.lower(): 0 for state in TrialState}
    extra = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state in FINISHED and trial.number not in counted:
            extra += 1  # finished after the budget was reached (another worker's last trial)
            continue
        counts[trial.state.name.lower()] += 1
    best = _best(study, settings.n_trials)
    if best is None:
        raise TuneError(f"Study '{study.study_name}' has no complete trial yet: run tnd-tune first.")
    return {
        "study": study.study_name, "n_trials_target": int(settings.n_trials), "trials": counts,
        "finished": counts["complete"] + counts["pruned"], "finished_not_counted": extra,
        "sampler": f"TPE(seed={settings.sampler_seed})",
        "pruner": settings.describe_pruner(),
        "reached_full_length": counts["complete"],  # a complete trial trained every step; a pruned one stopped early
        "trial_seconds": round(sum(t.duration.total_seconds() for t in study.get_trials(deepcopy=False)
                                   if t.number in counted and t.duration), 1),
        "best_trial": best.number, "best_value": best.value, "best_params": dict(best.params),
        "best_attrs": dict(best.user_attrs),
    }


def tuned_config(
    study: optuna.Study, space: SearchSpace, n_trials: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The best trial (of the first ``n_trials`` to finish, when given) as ``(values,
    group_choices)``: nested config values and group picks."""
    best = _best(study, n_trials)
    if best is None:
        raise TuneError(f"Study '{study.study_name}' has no complete trial yet.")
    values: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for p in space.params:
        if p.key not in best.params:
            continue
        if "." not in p.key:
            groups[p.key] = best.params[p.key]
            continue
        node = values
        *parents, leaf = p.key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = best.params[p.key]
    return values, groups

