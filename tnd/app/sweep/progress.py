"""A sweep's progress: jobs done / total, the running jobs and an ETA, read from the run folders.

The display polls the sweep folder while a launcher runs, so it works for every launcher (the
jobs' own processes write the files it reads). The ETA weighs each job left by its model's
own job length (`sweep_eta`), so a model 10x slower than the others counts 10x.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tnd.app.sweep.plan import job_id, job_values
from tnd.app.sweep.status import best_by_job
from tnd.evaluation.table import ERROR_FILE, MODEL_KEY, SUMMARY_FILE, RunRecord
from tnd.run_folder import METRICS_FILE, RECORD_DIR, RUN_FILE

def _job_activity(record: RunRecord) -> str:
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

    def __init__(self, sweep_dir: Path, jobs: list[list[str]], keys: Sequence[str], interval: float = 2.0,
                 since: float | None = None):
        from tqdm.auto import tqdm

        self.sweep_dir, self.jobs, self.keys, self.interval = sweep_dir, jobs, keys, interval
        self.since = time.time() if since is None else since  # the sweep's pace is measured from here
        self._stop = threading.Event()
        self._shown: tuple[int, str] | None = None
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.bar = tqdm(total=len(jobs), initial=self._done()[0], desc="[tnd-table] jobs", unit="job",
                        dynamic_ncols=True, mininterval=interval,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    def _done(self) -> tuple[int, list[str], list[JobTiming]]:
        best = best_by_job(self.sweep_dir, self.keys)
        done, running, timings = 0, [], []
        for job in self.jobs:
            record = best.get(job_id(job, self.keys))
            model = job_values(job)[MODEL_KEY]
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


def _job_times(record: RunRecord) -> tuple[float | None, float | None]:
    """(start, end) of a run from its folder: when it described itself (``run.json``, or Hydra's
    record: at the start of the job, again when it resumes) and when its summary or error was
    written."""
    if record.path is None:
        return None, None
    starts = [p.stat().st_mtime for p in (record.path / RUN_FILE, record.path / RECORD_DIR / "config.yaml")
              if p.is_file()]
    summary, error = (p.stat().st_mtime if p.is_file() else None
                      for p in (record.path / SUMMARY_FILE, record.path / ERROR_FILE))
    start = min(starts) if starts else None
    return start, summary if record.status == "ok" else error if record.status == "failed" else None


def _last_activity(folder: Path) -> float:
    """Newest modification time of a run folder's own files (its activity)."""
    times = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return max(times, default=folder.stat().st_mtime if folder.exists() else 0.0)
