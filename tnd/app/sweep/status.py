"""Where a sweep stands: each job's best run folder (finished over failed over unfinished), and
the checks that a finished folder was made by the same job and the same configuration (never
reused for another)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from tnd.app.sweep.plan import SWEPT_KEYS, SweepError, job_id
from tnd.evaluation.table import ERROR_FILE, SUMMARY_FILE, RunRecord, collect_runs, run_value
from tnd.run_folder import RECORD_DIR, RUN_FILE

_RANK = {"ok": 0, "failed": 1, "unfinished": 2}


def record_id(record: RunRecord, keys: Sequence[str]) -> tuple | None:
    """A run folder's identity in ``keys`` (as `job_id`); None when a value is unknown."""
    values = [run_value(record, k) for k in keys[:-1]]
    if record.seed is None or any(v is None for v in values):
        return None
    return (*values, record.seed)


def best_by_job(sweep_dir: Path, keys: Sequence[str] = SWEPT_KEYS) -> dict[tuple, RunRecord]:
    """``{job identity: its best run record}`` of the run folders under ``sweep_dir``."""
    if not Path(sweep_dir).is_dir():
        return {}
    best: dict[tuple, RunRecord] = {}
    for record in collect_runs(sweep_dir):
        key = record_id(record, keys)
        if key is not None and (key not in best or _RANK[record.status] < _RANK[best[key].status]):
            best[key] = record
    return best


def stamp(record: RunRecord | None) -> tuple | None:
    """A run's status and its record files' modification times: it changes when the run did."""
    if record is None or record.path is None:
        return None
    files = (RUN_FILE, f"{RECORD_DIR}/overrides.yaml", SUMMARY_FILE, ERROR_FILE)
    return (record.status, *((record.path / f).stat().st_mtime_ns if (record.path / f).exists() else None
                             for f in files))


def _finished(jobs: list[list[str]], best: dict[tuple, RunRecord],
              keys: Sequence[str]) -> Iterator[tuple[list[str], RunRecord]]:
    """``(job, its run record)`` for every job whose folder finished."""
    for job in jobs:
        record = best.get(job_id(job, keys))
        if record is not None and record.status == "ok":
            yield job, record


def check_not_stale(jobs: list[list[str]], best: dict[tuple, RunRecord], keys: Sequence[str] = SWEPT_KEYS) -> None:
    """`SweepError` when a job's folder finished with other overrides than the job's."""
    for job, record in _finished(jobs, best, keys):
        if record.overrides and set(record.overrides) != set(job):
            raise SweepError(
                f"Run folder {record.path} finished with overrides {list(record.overrides)}, but this sweep asks "
                f"for {job}. Pass another --sweep-dir (or delete that folder) to run this sweep."
            )


def check_current_config(jobs: list[list[str]], best: dict[tuple, RunRecord], keys: Sequence[str] = SWEPT_KEYS) -> None:
    """`SweepError` when a finished folder's configuration is not what its job composes to now.

    The overrides of a job can stay the same while ``conf/`` changes under it (a protocol's
    steps or games edited): such a folder would otherwise count as done and its old numbers
    would enter the new table. Compares the ``config_hash`` in each finished run's summary with
    the hash of the job's spec composed now (`tnd.app.spec.load_spec`, a fraction of a second
    per job); runs whose summary has no hash (not written by tnd-train) are not checked.
    """
    from tnd.app.experiment import config_hash
    from tnd.app.spec import load_spec

    for job, record in _finished(jobs, best, keys):
        if not record.metrics.get("config_hash"):
            continue
        now = config_hash(load_spec(job))
        if now != record.metrics["config_hash"]:
            raise SweepError(
                f"Run folder {record.path} finished with another configuration (config hash "
                f"{record.metrics['config_hash']}; the job {job} composes to {now} now: conf/ changed since it ran). "
                f"Pass another --sweep-dir, or move that sweep's folders away, to run this sweep."
            )
