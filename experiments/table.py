"""`tnd-table`: run the Pong table sweep (Hydra multirun of tnd-train) and aggregate it.

    tnd-table                                   # default scale: sweep (seeds stacked, one job per CPU core), then outputs/tables/pong_table-pong-default.{md,csv,png}
    tnd-table --jobs 1                          # one job at a time
    tnd-table --publish                         # the same, refreshing the committed results/pong_table-pong-default.*
    tnd-table scale=paper                       # -> multirun/pong_table/pong/paper, outputs/tables/pong_table-pong-paper.*
    tnd-table --robustness                      # no training: the finished runs under perturbations (+ smoothness)
    tnd-table --memory                          # no training: catch rate against k steps with the ball hidden
    tnd-table env=atari_pong scale=smoke        # -> multirun/pong_table/atari_pong/smoke, ...pong_table-atari_pong-smoke.*
    tnd-table --experiment tnd_ablation         # TND ablation: one row per variant -> tnd_ablation-pong-default.*
    tnd-table --experiment learning_curves      # longer runs with periodic validation evals (then tnd-curves)
    tnd-table hydra/launcher=joblib hydra.launcher.n_jobs=2
    tnd-table hydra/launcher=submitit_slurm hydra.launcher.partition=gpu
    tnd-table model=tnd,lstm seed=0 train.steps=20   # any trainer override passes through
    tnd-table --no-stack-seeds                  # one job per seed (default: each model's seeds as one vmapped program)
    tnd-table --aggregate-only                  # no training: tables from the existing run folders
    tnd-table --aggregate-only --sweep-dir multirun/2026-11-23/10-00-00

How it works:

1. The trainer composes ``experiment=<experiment> <overrides> --cfg hydra`` (no training)
   and the driver reads ``hydra.sweeper.params``; with the command-line overrides on top
   (Hydra's own rules: the command line wins) this gives the expected jobs, models × seeds
   (× the values of any other key the experiment sweeps: every combination of the swept
   keys but the seed is one row, a *variant*; the Pong table's rows are its models).
   They are saved in ``<sweep-dir>/sweep.json`` so ``--aggregate-only`` knows them too.
   Only keys of ``hydra.sweeper.params`` may vary; model and seed always must be set.
2. Run folders are stable: ``hydra.sweep.dir=<sweep-dir>`` and
   ``hydra.sweep.subdir=${hydra.job.override_dirname}`` with every non-swept key excluded,
   so a job lands in ``<sweep-dir>/model=<m>,seed=<s>`` (an ablation's folder names its
   other swept keys too, sorted by Hydra: ``graph=ring,model.options.dynamics=gated,model=tnd,seed=0``)
   whatever else is overridden, and also when the command line narrows a swept key.
3. Resume: jobs whose folder holds ``summary.json`` are skipped; the others (never
   started, unfinished or failed earlier) are launched as few multiruns as possible over
   exactly those jobs (disjoint grids of the swept keys' values). The trainer resumes an
   unfinished job from its own checkpoint in the same folder. A job that fails during this invocation is not retried
   in it; a launcher that stops at the first failure (the basic one) is relaunched over
   what remains. A finished folder made with other overrides is refused, not reused.
4. The run folders are aggregated (tnd.evaluation.table) into Markdown, CSV and PNG named
   ``<experiment>-<env>-<scale>.*`` under ``outputs/tables/`` (a user's own; ``--publish``
   writes to ``results/``, the repository's committed tables, and ``--results-dir`` anywhere),
   and the Markdown table is printed. An ablation's PNG shows the catch rate
   per variant, sorted; its table has no paper column (the paper's figure is for one TND).
   An ``expert_summary.json`` at the sweep root (or ``--expert-summary``) becomes the
   expert's reference row.

Exit status: 0 when every expected run finished, 1 when the table lists failed, unfinished
or missing runs after a sweep, 2 for bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from tnd.evaluation import table as tbl
from tnd.run_folder import METRICS_FILE, write_json

DEFAULT_EXPERIMENT = "pong_table"
DEFAULT_SCALE = "default"
OUTPUT_DIR = Path("outputs") / "tables"  # a user's tables (ignored by git)
PUBLISHED_DIR = Path("results")          # the committed tables and figures (--publish refreshes them)
SWEEP_FILE = "sweep.json"
MODEL_KEY, SEED_KEY = tbl.MODEL_KEY, tbl.SEED_KEY
SWEPT_KEYS = (MODEL_KEY, SEED_KEY)  # swept by every table sweep; an experiment may sweep more keys


# Override keys that never make rows when the keys are inferred from run folders (no sweep.json).
NEVER_ROW_KEYS = ("experiment", "scale", "data.root")


class SweepError(tbl.TableError):
    """The sweep cannot be planned or resumed as asked."""


# --------------------------------------------------------------------------- overrides


def _parse_overrides(overrides: Sequence[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise SweepError(f"Bad override: {exc}") from exc


def _split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str], str]:
    """(task overrides, hydra overrides, scale) from the command line's overrides."""
    parsed = _parse_overrides(overrides)
    task, hydra_ = [], []
    scale = DEFAULT_SCALE
    for raw, override in zip(overrides, parsed):
        key = override.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            hydra_.append(raw)
            continue
        if key == "experiment":
            raise SweepError("Pass the experiment as --experiment NAME, not as an override.")
        if key == "scale":
            if override.is_sweep_override():
                raise SweepError(f"Sweep one scale at a time (got '{raw}'); each scale has its own sweep folder.")
            scale = override.get_value_element_as_str()
        task.append(raw)
    return task, hydra_, scale


def _key(override_line: str) -> str:
    return override_line.partition("=")[0].lstrip("+~").split("@")[0]


# --------------------------------------------------------------------------- planning


@dataclasses.dataclass(frozen=True)
class Composed:
    """What the trainer's composed config says about the sweep (no training)."""

    params: dict  # hydra.sweeper.params
    env: str | None  # env.name (None: the trainer has no env group)


def compose_sweep(train_command: list[str], experiment: str, task: list[str], hydra_: list[str]) -> Composed:
    """``hydra.sweeper.params`` and ``env.name`` of the trainer's config with these overrides."""
    fixed = [o for o, p in zip(task, _parse_overrides(task)) if not p.is_sweep_override()]
    cmd = [*train_command, f"experiment={experiment}", *fixed, *hydra_, "--cfg", "all"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SweepError(
            f"Composing the sweep failed ({shlex.join(cmd)}):\n{(proc.stderr or proc.stdout).strip()[-3000:]}"
        )
    try:
        cfg = yaml.safe_load(proc.stdout) or {}
        params = ((cfg.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
        env = (cfg.get("env") or {}).get("name")
    except (yaml.YAMLError, AttributeError) as exc:
        raise SweepError(f"Could not read the config printed by {shlex.join(cmd)}: {exc}") from exc
    return Composed(dict(params), env)


def output_name(experiment: str, env: str | None, scale: str) -> str:
    """File stem of a table: experiment, environment and scale (``pong_table-pong-default``)."""
    return "-".join(part for part in (experiment, env, scale) if part)


def default_sweep_dir(experiment: str, env: str | None, scale: str) -> Path:
    """``multirun/<experiment>/<env>/<scale>``: one sweep folder per environment and scale."""
    return Path("multirun", experiment, *([env] if env else []), scale)


def swept_keys(params: dict) -> tuple[str, ...]:
    """The sweep's identity keys: ``model``, the other keys of ``hydra.sweeper.params`` in
    their order, then ``seed`` (``("model", "seed")`` for the Pong table).

    Every job sets them all; they name its run folder, and every combination of their
    values but the seed is one row (variant) of the table. A key stays one even when the
    command line narrows it to one value, so the folder is the same as in the full sweep.
    """
    declared = [_key(str(k)) for k in params]
    return (MODEL_KEY, *dict.fromkeys(k for k in declared if k not in SWEPT_KEYS), SEED_KEY)


def plan_jobs(params: dict, experiment: str, task: list[str]) -> list[list[str]]:
    """Every job's overrides, expanded exactly as Hydra's basic sweeper does.

    Only the keys of ``hydra.sweeper.params`` (and model, seed) may take several values;
    a key swept on the command line alone would give rows the experiment does not declare.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    lines = [f"{k}={v}" for k, v in params.items()] + [f"experiment={experiment}", *task]
    jobs = BasicSweeper.split_arguments(_parse_overrides(lines), None)[0]
    for job in jobs:
        keys = {_key(o) for o in job}
        absent = [k for k in SWEPT_KEYS if k not in keys]
        if absent:
            raise SweepError(
                f"The sweep must set {' and '.join(absent)} for every job: add them to "
                f"hydra.sweeper.params in conf/experiment/{experiment}.yaml or pass e.g. model=tnd,lstm seed=0,1."
            )
    keys = swept_keys(params)
    varying = sorted({_key(o) for o in jobs[0]} - set(keys)) if jobs else []
    varying = [k for k in varying if len({next(o for o in j if _key(o) == k) for j in jobs}) > 1]
    if varying:
        raise SweepError(
            f"The table's rows are the keys swept in conf/experiment/{experiment}.yaml ({', '.join(keys)}), "
            f"but {', '.join(varying)} also varies; add it to hydra.sweeper.params there, "
            "or run one tnd-table per value (with its own --sweep-dir)."
        )
    return [list(job) for job in jobs]


def _values(job: list[str]) -> dict[str, str]:
    return {_key(o): o.partition("=")[2] for o in job}


def _job_id(job: list[str], keys: Sequence[str] = SWEPT_KEYS) -> tuple:
    """The job's values of ``keys`` (seed last, as an int): ``("tnd", 0)`` in the Pong table."""
    values = _values(job)
    try:
        return (*(values[k] for k in keys[:-1]), int(values[keys[-1]]))
    except ValueError as exc:
        raise SweepError(f"Seeds must be integers, got seed={values[keys[-1]]}.") from exc


def _products(ids: Sequence[tuple]) -> list[tuple[tuple, ...]]:
    """Disjoint cartesian products that cover exactly the identities ``ids`` (n-tuples).

    Recursively on the first position: the values whose remaining tuples are the same set
    are swept together, so a full grid is one product and a grid missing a few jobs a few.
    Returns one tuple of per-position value tuples per product (first-seen order).
    """
    if not ids:
        return []
    if len(ids[0]) == 0:
        return [()]
    tails_of: dict = {}
    for ident in ids:
        tails_of.setdefault(ident[0], []).append(ident[1:])
    heads_of: dict = {}
    for head, tails in tails_of.items():
        heads_of.setdefault(frozenset(tails), []).append(head)
    out = []
    for head, tails in tails_of.items():
        heads = heads_of.get(frozenset(tails))
        if heads is None or heads[0] != head:
            continue  # swept with the first head of the same tails
        out += [(tuple(heads), *rest) for rest in _products(list(dict.fromkeys(tails)))]
    return out


def _group_jobs(jobs: list[list[str]], keys: Sequence[str] = SWEPT_KEYS) -> list[list[str]]:
    """Few multirun override lists (fixed ones + ``key=a,b`` per swept key) covering exactly ``jobs``."""
    if not jobs:
        return []
    fixed = [o for o in jobs[0] if _key(o) not in keys]
    raw_key = {_key(o): o.partition("=")[0] for o in jobs[0]}
    groups = []
    for product in _products([_job_id(j, keys) for j in jobs]):
        lines = [f"{raw_key[k]}=" + ",".join(str(v) for v in (sorted(vs) if k == SEED_KEY else vs))
                 for k, vs in zip(keys, product)]
        groups.append([*fixed, *lines])
    return groups


# --------------------------------------------------------------------------- running


def _record_id(record: tbl.RunRecord, keys: Sequence[str]) -> tuple | None:
    """A run folder's identity in ``keys`` (as ``_job_id``); None when a value is unknown."""
    values = [tbl.run_value(record, k) for k in keys[:-1]]
    if record.seed is None or any(v is None for v in values):
        return None
    return (*values, record.seed)


def _best_by_job(sweep_dir: Path, keys: Sequence[str] = SWEPT_KEYS) -> dict[tuple, tbl.RunRecord]:
    if not sweep_dir.is_dir():
        return {}
    rank = {"ok": 0, "failed": 1, "unfinished": 2}
    best: dict[tuple, tbl.RunRecord] = {}
    for record in tbl.collect_runs(sweep_dir):
        key = _record_id(record, keys)
        if key is None:
            continue
        if key not in best or rank[record.status] < rank[best[key].status]:
            best[key] = record
    return best


def _stamp(record: tbl.RunRecord | None):
    if record is None or record.path is None:
        return None
    stamps = [record.status]
    for name in (".hydra/overrides.yaml", tbl.SUMMARY_FILE, tbl.ERROR_FILE):
        path = record.path / name
        stamps.append(path.stat().st_mtime_ns if path.exists() else None)
    return tuple(stamps)


def _check_not_stale(jobs: list[list[str]], best: dict[tuple, tbl.RunRecord], keys: Sequence[str] = SWEPT_KEYS) -> None:
    for job in jobs:
        record = best.get(_job_id(job, keys))
        if record is not None and record.status == "ok" and record.overrides and set(record.overrides) != set(job):
            raise SweepError(
                f"Run folder {record.path} finished with overrides {list(record.overrides)}, but this sweep asks "
                f"for {job}. Pass another --sweep-dir (or delete that folder) to run this sweep."
            )


def _job_activity(record: tbl.RunRecord) -> str:
    """What an unfinished job is doing, from its folder: starting, step k, evaluating."""
    metrics = record.path / METRICS_FILE if record.path is not None else None
    if metrics is None or not metrics.is_file():
        return "starting"
    try:
        last = metrics.read_text().strip().splitlines()[-1]
        return f"step {json.loads(last)['step']}"
    except (OSError, IndexError, KeyError, ValueError):
        return "training"


@dataclasses.dataclass(frozen=True)
class JobTiming:
    """One planned job, for the ETA: its model, when it started and when it ended (None: not
    yet), and whether it finished (its length then counts as its model's)."""

    model: str
    start: float | None = None
    end: float | None = None
    ok: bool = False


def model_lengths(jobs: Sequence[JobTiming]) -> dict[str, float]:
    """Seconds one job of each model took: the mean over its finished jobs with known times."""
    lengths: dict[str, list[float]] = {}
    for job in jobs:
        if job.ok and job.start is not None and job.end is not None and job.end >= job.start:
            lengths.setdefault(job.model, []).append(job.end - job.start)
    return {model: sum(ls) / len(ls) for model, ls in lengths.items()}


@dataclasses.dataclass(frozen=True)
class Eta:
    """A sweep's estimated time left (`sweep_eta`)."""

    seconds: float | None  # None: no estimate yet (``pending`` says why)
    untimed: tuple[str, ...] = ()  # models with jobs left and none finished yet: the estimate is rough
    pending: str = "after the first job"

    def text(self) -> str:
        """As the progress line shows it, in whole minutes (so it changes rarely)."""
        if self.seconds is None:
            return f"ETA {self.pending}"
        hours, minutes = divmod(round(self.seconds / 60.0), 60)
        left = "under a minute" if self.seconds < 60 else f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
        rough = f" (rough: {', '.join(self.untimed)} not timed yet)" if self.untimed else ""
        return f"ETA {'~' if rough and self.seconds >= 60 else ''}{left}{rough}"


def sweep_eta(jobs: Sequence[JobTiming], now: float, since: float) -> Eta:
    """The time a sweep has left, from each model's own job length.

    Each job left is expected to take as long as its model's finished jobs did
    (`model_lengths`; a running job less what it has run), so a model 10x slower than the
    others counts 10x, not the mean job. A model with no finished job yet is guessed at the
    mean of the timed models and named (the estimate is then rough). The work left is
    divided by the sweep's own pace since ``since``: job-seconds run per second, i.e. how
    many jobs ran side by side (a launcher's parallel jobs, a stack's seeds).
    """
    lengths = model_lengths(jobs)
    if not lengths:
        return Eta(None)
    guess = sum(lengths.values()) / len(lengths)
    left = 0.0
    for job in jobs:
        if job.end is None:
            ran = now - job.start if job.start is not None else 0.0
            left += max(lengths.get(job.model, guess) - ran, 0.0)
    ran = sum(max(min(job.end if job.end is not None else now, now) - max(job.start, since), 0.0)
              for job in jobs if job.start is not None)
    if ran <= 0 or now <= since:
        return Eta(None, pending="once a job runs")
    untimed = tuple(sorted({j.model for j in jobs if j.end is None and j.model not in lengths}))
    return Eta(left / (ran / (now - since)), untimed)


class SweepProgress:
    """One progress display for a sweep: jobs done / total, an ETA, and the running jobs.

    A background thread polls the sweep folder (every ``interval`` seconds) while the
    launcher runs; jobs count as done when their folder holds ``summary.json`` or
    ``error.json`` (it works for every launcher: the jobs' own processes write the files).
    The ETA weighs each job left by its model's own job length (`sweep_eta`).
    """

    def __init__(self, sweep_dir: Path, jobs: list[list[str]], keys: Sequence[str], interval: float = 2.0):
        from tqdm.auto import tqdm

        self.sweep_dir, self.jobs, self.keys, self.interval = sweep_dir, jobs, keys, interval
        self.since = time.time()
        self._stop = threading.Event()
        self._shown: tuple[int, str] | None = None
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.bar = tqdm(total=len(jobs), initial=self._done()[0], desc="[tnd-table] jobs", unit="job",
                        dynamic_ncols=True, mininterval=interval,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    def _done(self) -> tuple[int, list[str], list[JobTiming]]:
        best = _best_by_job(self.sweep_dir, self.keys)
        done, running, timings = 0, [], []
        for job in self.jobs:
            record = best.get(_job_id(job, self.keys))
            model = _values(job)[MODEL_KEY]
            if record is not None and record.status in ("ok", "failed"):
                done += 1
                timings.append(JobTiming(model, *_job_times(record), ok=record.status == "ok"))
            elif record is not None and record.path is not None and time.time() - _last_activity(record.path) < 600:
                running.append(f"{record.path.relative_to(self.sweep_dir)} ({_job_activity(record)})")  # model=lstm/seed=0 when stacked
                timings.append(JobTiming(model, _job_times(record)[0]))
            else:
                timings.append(JobTiming(model))
        return done, running, timings

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def refresh(self) -> None:
        done, running, timings = self._done()
        parts = [sweep_eta(timings, time.time(), self.since).text()] if done < len(self.jobs) else []
        parts += [("running: " + "; ".join(running))] if running else []
        postfix = "; ".join(parts)
        if (done, postfix) == self._shown:
            return  # nothing changed: no new line in a log file
        self._shown = (done, postfix)
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.n = done  # one line for the count and its ETA together
        self.bar.refresh()

    def __enter__(self) -> SweepProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.refresh()
        self.bar.close()


def _job_times(record: tbl.RunRecord) -> tuple[float | None, float | None]:
    """(start, end) of a run from its folder: when its ``.hydra/`` record was written (at the
    start of the job, again when it resumes) and when its summary or error was."""
    if record.path is None:
        return None, None
    stamps = [record.path / RECORD_FILE, record.path / tbl.SUMMARY_FILE, record.path / tbl.ERROR_FILE]
    start, summary, error = (p.stat().st_mtime if p.is_file() else None for p in stamps)
    return start, summary if record.status == "ok" else error if record.status == "failed" else None


RECORD_FILE = Path(".hydra") / "config.yaml"  # written when a job starts


def _last_activity(folder: Path) -> float:
    """Newest modification time of a run folder's own files (its activity)."""
    times = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return max(times, default=folder.stat().st_mtime if folder.exists() else 0.0)


def _call(cmd: list[str], grace_seconds: float = 60.0) -> int:
    """Runs ``cmd``; on Ctrl-C (which the job receives too) waits for it to stop on its own,
    so it can print its line and leave a resumable folder, before re-raising."""
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def stacks_seeds(job: list[str]) -> bool:
    """Whether this job's seeds can train as one program: its model's structure does not
    depend on the seed, or it holds its graph as data (TND: seeds with graphs of one size
    share the program; `tnd.app.run_seeds` trains any that cannot one after another). The
    sparse RNN (and a wired CfC) build their graph into their structure, per seed, unless
    ``graph.seed`` fixes it."""
    from tnd.models import graph_mode, holds_graph_as_data

    values = _values(job)
    if "graph.seed" in values and values["graph.seed"] not in ("null", ""):
        return True
    if holds_graph_as_data(values[MODEL_KEY]):
        return True
    mode = graph_mode(values[MODEL_KEY])
    wired = any(k.endswith("options.wired") and v.lower() == "true" for k, v in values.items())
    return mode is None or (mode == "optional" and not wired)


def _launches(pending: list[list[str]], keys: Sequence[str], stack_seeds: bool) -> list[tuple[list[str], bool]]:
    """``(multirun overrides, stacked)`` covering ``pending``. With ``stack_seeds`` the jobs of a
    model whose seeds can share one program (`stacks_seeds`) become one job per model,
    ``seeds=[...]``, that trains them together (``tnd-train seeds=[...]``; each seed's run
    folder is ``<job folder>/seed=<k>``)."""
    together = [stack_seeds and stacks_seeds(j) for j in pending]
    stacked = [j for j, t in zip(pending, together) if t]
    alone = [j for j, t in zip(pending, together) if not t]
    out = [(group, False) for group in _group_jobs(alone, keys)]
    for group in _group_jobs(stacked, keys):
        *rest, seed_line = group  # the seed is the last swept key
        seed_key, _, seeds = seed_line.partition("=")
        out.append(([*rest, f"{seed_key}={seeds.split(',')[0]}", f"{tbl.STACKED_SEEDS_KEY}=[{seeds}]"], True))
    return out


def run_sweep(
    *,
    train_command: list[str],
    jobs: list[list[str]],
    hydra_overrides: list[str],
    sweep_dir: Path,
    retry_failed: bool = True,
    keys: Sequence[str] = SWEPT_KEYS,
    stack_seeds: bool = False,
) -> None:
    """Launches multiruns until every job finished or was tried once in this invocation.

    ``keys`` (``swept_keys``) name the run folders: every other override is excluded from
    Hydra's override_dirname, so a job lands in ``<sweep_dir>/<key>=<value>,...``. With
    ``stack_seeds`` (`_launches`) a stacked job lands in ``<sweep_dir>/<keys but the
    seed>/`` and its seeds in ``seed=<k>/`` below it.
    """
    constant = [k for k in dict.fromkeys(_key(o) for o in jobs[0]) if k not in keys]
    if "'" in str(sweep_dir):
        raise SweepError(f"The sweep folder '{sweep_dir}' contains a quote; pick a --sweep-dir without one.")

    def placement(stacked: bool) -> list[str]:
        excluded = [*constant, SEED_KEY, tbl.STACKED_SEEDS_KEY] if stacked else constant
        return [
            f"hydra.sweep.dir='{sweep_dir}'",
            "hydra.sweep.subdir=${hydra.job.override_dirname}",
            "hydra.job.config.override_dirname.exclude_keys=[" + ",".join(f"'{k}'" for k in excluded) + "]",
        ]
    tried: set[tuple] = set()
    for _ in range(len(jobs) + 1):
        best = _best_by_job(sweep_dir, keys)
        _check_not_stale(jobs, best, keys)
        pending = []
        for job in jobs:
            key = _job_id(job, keys)
            record = best.get(key)
            status = record.status if record is not None else "missing"
            if status == "ok" or key in tried or (status == "failed" and not retry_failed):
                continue
            pending.append(job)
        if not pending:
            return
        finished = sum(1 for job in jobs if getattr(best.get(_job_id(job, keys)), "status", None) == "ok")
        print(f"[tnd-table] {len(jobs)} jobs: {finished} finished, launching {len(pending)}", flush=True)
        progress = False
        for group, stacked in _launches(pending, keys, stack_seeds):
            before = {_job_id(j, keys): _stamp(best.get(_job_id(j, keys))) for j in pending}
            cmd = [*train_command, "-m", *group, *hydra_overrides, *placement(stacked)]
            print("[tnd-table] $ " + shlex.join(cmd), flush=True)
            with SweepProgress(sweep_dir, jobs, keys):
                rc = _call(cmd)
            best = _best_by_job(sweep_dir, keys)
            for key, stamp in before.items():
                if _stamp(best.get(key)) != stamp:
                    tried.add(key)
                    progress = True
            if rc != 0:
                print(f"[tnd-table] the multirun exited with status {rc}; re-planning the remaining jobs", flush=True)
                break
        if not progress:
            print("[tnd-table] no job started in the last launch; giving up on the remaining ones", flush=True)
            return


# --------------------------------------------------------------------------- entry point


def _write_sweep_file(sweep_dir: Path, experiment: str, overrides: list[str], jobs: list[list[str]],
                      keys: Sequence[str] = SWEPT_KEYS) -> None:
    """``sweep.json``: the planned jobs, models, seeds, swept keys and variants (rows)."""
    ids = [_job_id(j, keys) for j in jobs]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SWEEP_FILE).write_text(json.dumps({
        "experiment": experiment,
        "overrides": overrides,
        "models": list(dict.fromkeys(i[0] for i in ids)),
        "seeds": sorted({i[-1] for i in ids}),
        "keys": list(keys),
        "variants": [list(v) for v in dict.fromkeys(i[:-1] for i in ids)],
        "jobs": jobs,
    }, indent=2) + "\n")


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the sweep expects, for the aggregation (None: not known, use what is found)."""

    row_keys: tuple[str, ...] | None  # swept keys but the seed
    variants: list[list[str]] | None
    models: list[str] | None
    seeds: list[int] | None


def _expected(sweep_dir: Path, models: str | None, seeds: str | None) -> Expected:
    row_keys = variants = expected_models = expected_seeds = None
    sweep_file = sweep_dir / SWEEP_FILE
    if sweep_file.is_file():
        try:
            data = json.loads(sweep_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SweepError(f"Cannot read {sweep_file}: {exc}. Delete it (or rerun the sweep) and retry.") from exc
        expected_models, expected_seeds = data.get("models"), data.get("seeds")
        if data.get("keys"):
            row_keys, variants = tuple(data["keys"][:-1]), data.get("variants")
    if models:
        expected_models = [m.strip() for m in models.split(",") if m.strip()]
    if seeds:
        try:
            expected_seeds = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError as exc:
            raise SweepError(f"--seeds takes comma-separated integers, got '{seeds}'.") from exc
    return Expected(row_keys, variants, expected_models, expected_seeds)


def check_named_models(models: str | None, records: Sequence[tbl.RunRecord], sweep_dir: Path) -> None:
    """``--models``: every model named must have a run folder under ``sweep_dir``; a name
    that has none (a typo) fails with the models that do (`SweepError`)."""
    named = [m.strip() for m in (models or "").split(",") if m.strip()]
    found = sorted({str(r.model) for r in records if r.model})
    absent = [m for m in named if m not in found]
    if absent:
        there = f"the models there: {', '.join(found)}" if found else "it holds no run folders"
        raise SweepError(f"--models {','.join(absent)}: no run folder of {', '.join(absent)} in {sweep_dir}; "
                         f"{there}.")


def warn_unreadable(records: Sequence[tbl.RunRecord]) -> None:
    """One line on stderr per run whose ``.hydra/`` record cannot be read (it is not counted:
    the table lists it as failed); the other runs are aggregated as usual."""
    for record in records:
        if record.unreadable:
            print(f"tnd-table: warning: {record.unreadable} That run is not counted (listed as failed).",
                  file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tnd-table", description=__doc__.splitlines()[0],
        epilog="Any other argument is a Hydra override passed to every tnd-train job (hydra/launcher=..., scale=..., model=..., seed=...).",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the sweep")
    parser.add_argument("--aggregate-only", action="store_true", help="do not train; aggregate the existing run folders")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="experiment config to sweep (default: %(default)s)")
    parser.add_argument("--sweep-dir", type=Path, help="folder of the run folders (default: multirun/<experiment>/<env>/<scale>)")
    parser.add_argument("--results-dir", type=Path,
                        help=f"where the table goes (default: {OUTPUT_DIR}; with --publish: {PUBLISHED_DIR})")
    parser.add_argument("--publish", action="store_true",
                        help=f"write to {PUBLISHED_DIR}/, refreshing the repository's committed tables and figures")
    parser.add_argument("--name", help="file stem of the outputs (default: <experiment>-<env>-<scale>)")
    parser.add_argument("--expert-summary", type=Path, help="expert metrics JSON for the reference row (default: <sweep-dir>/expert_summary.json)")
    parser.add_argument("--models", help="aggregate-only: comma-separated expected models (default: from sweep.json, else those found)")
    parser.add_argument("--seeds", help="aggregate-only: comma-separated expected seeds (default: from sweep.json, else those found)")
    parser.add_argument("--stack-seeds", action=argparse.BooleanOptionalAction, default=True,
                        help="train each model's seeds as one jitted program, one job per model (the default; TND keeps "
                             "a graph per seed; the sparse RNN, whose graph is part of its structure, stays one job per "
                             "seed unless graph.seed is set); --no-stack-seeds: one job per seed")
    parser.add_argument("--jobs", type=int, default=None,
                        help="jobs at a time on this machine (default: one per CPU core, one on a GPU machine; "
                             "ignored with hydra/launcher=...)")
    measure = parser.add_mutually_exclusive_group()
    measure.add_argument("--robustness", action="store_true",
                         help="no training: the sweep's finished runs under perturbations, plus the smoothness "
                              "columns (conf/table/robustness.yaml) -> <name>-robustness.{md,csv,png}")
    measure.add_argument("--memory", action="store_true",
                         help="no training: catch rate against k steps with the ball hidden -> <name>-memory.*")
    parser.add_argument("--perturbations", help="--robustness: comma-separated columns (default: all)")
    parser.add_argument("--no-retry-failed", dest="retry_failed", action="store_false", help="do not relaunch runs that failed before")
    parser.add_argument("--train-command", default=f"{shlex.quote(sys.executable)} -m experiments.train",
                        help="command that runs the Hydra trainer app (default: python -m experiments.train)")
    return parser


def write_expert_summary(sweep_dir: Path, records: Sequence[tbl.RunRecord]) -> Path | None:
    """The expert's reference row: the env's expert on the runs' own held-out eval games.

    Written once to ``<sweep_dir>/expert_summary.json`` when the env has an expert to play
    (`EnvDefinition.play_expert`); the env config and eval games are read from a finished
    run's ``.hydra/config.yaml``.
    """
    target = sweep_dir / tbl.EXPERT_FILE
    finished = [r for r in records if r.status == "ok" and r.path is not None]
    if target.exists() or not finished:
        return None
    from omegaconf import OmegaConf

    from tnd.envs import UnknownEnvError, get_env
    from tnd.evaluation.metrics import summarize

    config = OmegaConf.to_container(OmegaConf.load(Path(finished[0].path) / ".hydra" / "config.yaml"))
    env_name, eval_cfg = (config.get("env") or {}).get("name"), config.get("eval")
    try:
        env = get_env(env_name)
    except UnknownEnvError:  # no env recorded, or a plugin env not imported here: no reference row
        return None
    if eval_cfg is None:
        return None
    env_config = env.make_config({**config["env"]["options"], **dict(eval_cfg.get("env_overrides") or {})})
    tally = env.play_expert(env_config, num_games=int(eval_cfg["num_games"]), seed=int(eval_cfg["seed"]),
                            num_envs=int(eval_cfg.get("num_envs", 8)), progress=True)
    if tally is None:
        return None
    return write_json(target, {"model": "expert", "env": env_name, **summarize(tally)})


def default_jobs() -> int:
    """Jobs at a time by default: one per CPU core (every job's XLA uses the cores it gets, as
    ``pytest -n auto`` does), but one where JAX has a GPU plugin (one process owns the GPU;
    stack seeds instead, ``--stack-seeds``)."""
    import importlib.util
    import os

    if any(importlib.util.find_spec(plugin) for plugin in GPU_PLUGINS):
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


GPU_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin")


def launcher_overrides(hydra_: Sequence[str], jobs: int | None) -> tuple[list[str], str]:
    """The Hydra overrides that run ``jobs`` at a time (the local joblib launcher), unless a
    launcher is named; and the line that says how the jobs run."""
    if any(o.partition("=")[0] == "hydra/launcher" for o in hydra_):
        return [], "jobs run by the launcher named on the command line"
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise SweepError(f"--jobs must be at least 1, got {jobs}.")
    if jobs == 1:
        return [], "1 job at a time (--jobs N runs N at a time)"
    return (["hydra/launcher=local_parallel", f"hydra.launcher.n_jobs={jobs}"],
            f"{jobs} jobs at a time, one per CPU core (--jobs 1 runs one at a time)")


def _measure_runs(kind: str, records, results_dir: Path, name: str, perturbations: str | None) -> int:
    """``--robustness`` / ``--memory``: the finished runs measured again (experiments/robustness.py)."""
    from experiments.robustness import write_robustness

    try:
        text, outputs = write_robustness(kind, records, results_dir, name, perturbations)
    except ValueError as exc:  # every library error (a bad column, a damaged checkpoint, an out-of-range amount)
        print(f"tnd-table: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tnd-table: interrupted; the measurements made so far are kept in each run folder "
              "(robustness.json): run the same command again to go on.", file=sys.stderr, flush=True)
        return 130
    print()
    print(text)
    print("[tnd-table] wrote " + ", ".join(str(p) for p in outputs), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    args.aggregate_only = args.aggregate_only or args.robustness or args.memory  # measuring never trains
    if args.perturbations and not args.robustness:
        parser.error("--perturbations goes with --robustness")
    sweep_dir = args.sweep_dir or Path("multirun")
    try:
        task, hydra_, scale = _split_overrides(args.overrides)
        launcher: list[str] = []
        if not args.aggregate_only:
            launcher, how = launcher_overrides(hydra_, args.jobs)
            print(f"[tnd-table] {how}", flush=True)
        train_command = shlex.split(args.train_command)
        env = _values(task).get("env")
        composed = None
        if not args.aggregate_only or (args.sweep_dir is None and env is None):  # else no need to compose
            composed = compose_sweep(train_command, args.experiment, task, hydra_)
            env = env or composed.env
        sweep_dir = args.sweep_dir or default_sweep_dir(args.experiment, env, scale)
        results_dir = args.results_dir or (PUBLISHED_DIR if args.publish else OUTPUT_DIR)
        if not args.aggregate_only:
            params = composed.params
            jobs = plan_jobs(params, args.experiment, task)
            keys = swept_keys(params)
            _check_not_stale(jobs, _best_by_job(sweep_dir, keys), keys)
            _write_sweep_file(sweep_dir, args.experiment, list(args.overrides), jobs, keys)
            run_sweep(train_command=train_command, jobs=jobs, hydra_overrides=[*launcher, *hydra_],
                      sweep_dir=sweep_dir, retry_failed=args.retry_failed, keys=keys, stack_seeds=args.stack_seeds)
        expected = _expected(sweep_dir, args.models, args.seeds)
        records = tbl.collect_runs(sweep_dir)
        warn_unreadable(records)
        check_named_models(args.models, records, sweep_dir)
        if composed is None and env is None:  # aggregate-only of a given folder: the runs' own env
            env = next((str(r.metrics["env"]) for r in records if r.status == "ok" and "env" in r.metrics), None)
        name = args.name or output_name(args.experiment, env, scale)
        if args.robustness or args.memory:
            return _measure_runs("memory" if args.memory else "robustness", records, results_dir, name,
                                 args.perturbations)
        if args.expert_summary is None:
            write_expert_summary(sweep_dir, records)
        expert = tbl.load_expert_summary(args.expert_summary or sweep_dir)
        if args.expert_summary is not None and expert is None:
            raise SweepError(f"--expert-summary {args.expert_summary} does not exist.")
        row_keys = expected.row_keys or tbl.infer_row_keys(records, ignore=NEVER_ROW_KEYS)
        table = tbl.aggregate(records, keys=row_keys, expected_variants=expected.variants,
                              expected_models=expected.models, expected_seeds=expected.seeds, expert=expert,
                              paper=tbl.PAPER if row_keys == (MODEL_KEY,) else None)
    except tbl.TableError as exc:
        print(f"tnd-table: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        finished = sum(1 for r in tbl.collect_runs(sweep_dir) if r.status == "ok") if sweep_dir.is_dir() else 0
        print(f"tnd-table: interrupted; {finished} run(s) finished in {sweep_dir}; run the same command again to "
              "resume (finished runs are kept, unfinished ones continue from their last checkpoint).",
              file=sys.stderr, flush=True)
        return 130
    outputs = [
        tbl.write_markdown(table, results_dir / f"{name}.md"),
        tbl.write_csv(table, results_dir / f"{name}.csv"),
        tbl.plot_table(table, results_dir / f"{name}.png"),
    ]
    print()
    print(tbl.render_markdown(table))
    print("[tnd-table] wrote " + ", ".join(str(p) for p in outputs), flush=True)
    if table.n_problems and not args.aggregate_only:
        print(f"[tnd-table] {table.n_problems} expected run(s) did not finish; the table lists them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
