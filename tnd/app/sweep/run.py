"""Running a sweep: launch what is left until every job finished or was tried once, then the table.

`run_sweep` plans nothing itself: it takes the jobs (`tnd.app.sweep.plan`) and a *launcher*,
a function that runs one `LaunchGroup` and returns its exit status. `run_in_process` trains
the jobs here, one after another (a notebook's launcher: `tnd.app.load_spec` and
`tnd.app.run_experiment` / `run_seeds`); ``tnd-table`` passes one that starts a Hydra multirun of
``tnd-train``. Either way a job lands in ``<sweep_dir>/<key>=<value>,...`` (`job_dirname`) and
a rerun resumes: finished jobs are skipped, unfinished ones continue from their checkpoints.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tnd.app.sweep.plan import (
    DEFAULT_EXPERIMENT, NEVER_ROW_KEYS, SWEPT_KEYS, LaunchGroup, SweepError, expected_runs, fixed_overrides, job_dirname,
    job_id, job_values, launch_groups, plan_jobs, swept_keys,
)
from tnd.app.sweep.progress import SweepProgress
from tnd.app.sweep.status import best_by_job, check_current_config, check_not_stale, stamp
from tnd.evaluation import table as tables
from tnd.run_folder import EXPERT_FILE, seed_folder, write_json

Launcher = Callable[[LaunchGroup], int]
INTERRUPTED = 130  # a launch's exit status after Ctrl-C (128 + SIGINT): the sweep stops there


def plan_sweep(overrides: Sequence[str] = (), experiment: str = DEFAULT_EXPERIMENT) -> tuple[list[list[str]], tuple[str, ...]]:
    """``(jobs, swept keys)`` of ``experiment`` with ``overrides`` (e.g. ``["model=lstm,rnn",
    "seed=0,1", "scale=smoke"]``), composed here (`tnd.app.spec.compose_job`) as tnd-table does."""
    from omegaconf import OmegaConf

    from tnd.app.spec import compose_job

    task = list(overrides)
    cfg = compose_job([f"experiment={experiment}", *fixed_overrides(task)], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=False) or {}
    return plan_jobs(dict(params), experiment, task), swept_keys(params)


def run_in_process(sweep_dir: str | os.PathLike) -> Launcher:
    """A launcher that trains each job of a group in this process, one after another (a stack's
    seeds as one program). A job that fails with bad input leaves ``error.json`` and the others run."""
    from tnd.app.experiment import run_experiment, run_seeds
    from tnd.app.spec import load_spec
    from tnd.run_folder import ERROR_FILE

    def launch(group: LaunchGroup) -> int:
        failed = 0
        runs = _stacks(group.jobs, group.keys) if group.stacked else [(job, None) for job in group.jobs]
        for job, seeds in runs:
            folder = Path(sweep_dir) / job_dirname(job, group.folder_keys)
            try:
                if seeds is None:
                    run_experiment(load_spec(job), folder, overrides=job)
                else:
                    run_seeds(load_spec(job), seeds, [seed_folder(folder, s) for s in seeds], overrides=job)
            except ValueError as exc:  # the library's input errors; anything else is a bug and stops the sweep
                failed += 1
                for where, seed in ([(folder, None)] if seeds is None else [(seed_folder(folder, s), s) for s in seeds]):
                    values = job_values(job)
                    write_json(Path(where) / ERROR_FILE, {"error": str(exc), "model": values["model"],
                                                          "seed": int(values["seed"] if seed is None else seed)})
                print(f"[sweep] {folder.name}: {exc}", file=sys.stderr, flush=True)
        return 1 if failed else 0

    return launch


def _stacks(jobs: list[list[str]], keys: Sequence[str]) -> list[tuple[list[str], list[int]]]:
    """Jobs that differ only in seed, as ``(first job, seeds)``."""
    stacks: dict[tuple, tuple[list[str], list[int]]] = {}
    for job in jobs:
        ident = job_id(job, keys)
        stacks.setdefault(ident[:-1], (job, []))[1].append(ident[-1])
    return list(stacks.values())


def run_sweep(jobs: list[list[str]], sweep_dir: str | os.PathLike, *, launch: Launcher | None = None,
              keys: Sequence[str] = SWEPT_KEYS, stack_seeds: bool = False, retry_failed: bool = True,
              progress: bool = True, dagger_rounds: int = 0) -> None:
    """Launches the jobs not finished yet until every job finished or was tried once here.

    ``launch`` runs one `LaunchGroup` (default: `run_in_process`). A finished folder made
    by other overrides is refused (`check_not_stale`), and one whose configuration is not what
    its job composes to now (`check_current_config`: conf/ changed since it ran). A launcher
    that stops at its first failure is relaunched over what remains; a launch that starts no
    job ends the sweep; a launch interrupted by Ctrl-C (exit status `INTERRUPTED`) stops it with
    ``KeyboardInterrupt``, whether or not this process saw the signal. ``stack_seeds``: a
    model's seeds as one job where they can share a program (`tnd.app.sweep.plan.stacks_seeds`;
    ``dagger_rounds`` is the sweep's composed ``dagger.rounds``, for jobs that do not override it).
    """
    sweep_dir = Path(sweep_dir)
    launch = launch or run_in_process(sweep_dir)
    started = time.time()  # the ETA's pace counts from here, across launches
    check_current_config(jobs, best_by_job(sweep_dir, keys), keys)  # once: the runs finished here are current
    tried: set[tuple] = set()
    for _ in range(len(jobs) + 1):
        best = best_by_job(sweep_dir, keys)
        check_not_stale(jobs, best, keys)
        pending = [job for job in jobs if _pending(best.get(job_id(job, keys)), job_id(job, keys), tried, retry_failed)]
        if not pending:
            return
        finished = sum(1 for job in jobs if getattr(best.get(job_id(job, keys)), "status", None) == "ok")
        print(f"[tnd-table] {len(jobs)} jobs: {finished} finished, launching {len(pending)}", flush=True)
        moved = False
        for group in launch_groups(pending, keys, stack_seeds, dagger_rounds):
            before = {job_id(j, keys): stamp(best.get(job_id(j, keys))) for j in pending}
            if progress:
                with SweepProgress(sweep_dir, jobs, keys, since=started):
                    rc = launch(group)
            else:
                rc = launch(group)
            best = best_by_job(sweep_dir, keys)
            changed = {key for key, before_stamp in before.items() if stamp(best.get(key)) != before_stamp}
            tried |= changed
            moved = moved or bool(changed)
            if rc == INTERRUPTED:  # the jobs were interrupted, not this process (it may not see SIGINT)
                raise KeyboardInterrupt
            if rc != 0:
                print(f"[tnd-table] the launch exited with status {rc}; re-planning the remaining jobs", flush=True)
                break
        if not moved:
            print("[tnd-table] no job started in the last launch; giving up on the remaining ones", flush=True)
            return


def _pending(record, key: tuple, tried: set[tuple], retry_failed: bool) -> bool:
    status = record.status if record is not None else "missing"
    return not (status == "ok" or key in tried or (status == "failed" and not retry_failed))


def expert_reference(sweep_dir: str | os.PathLike, records: Sequence[tables.RunRecord] | None = None) -> Path | None:
    """The expert's reference row: the env's expert on the runs' own test games, written once
    to ``<sweep_dir>/expert_summary.json`` when the env has an expert to play. The env config
    and the games are read from a finished run's spec."""
    sweep_dir = Path(sweep_dir)
    records = tables.collect_runs(sweep_dir) if records is None else records
    target = sweep_dir / EXPERT_FILE
    finished = [r for r in records if r.status == "ok" and r.path is not None]
    if target.exists() or not finished:
        return None
    from tnd.envs import UnknownEnvError, get_env
    from tnd.evaluation.metrics import summarize

    config = finished[0].config
    env_cfg, eval_cfg = config.get("env") or {}, config.get("eval")
    try:
        env = get_env(env_cfg.get("name"))
    except UnknownEnvError:  # no env recorded, or a plugin env not imported here: no reference row
        return None
    if eval_cfg is None:
        return None
    env_config = env.make_config({**env_cfg.get("options", {}), **dict(eval_cfg.get("env_overrides") or {})})
    tally = env.play_expert(env_config, num_games=int(eval_cfg["num_games"]), seed=int(eval_cfg["seed"]),
                            num_envs=int(eval_cfg.get("num_envs", 8)), progress=True)
    if tally is None:
        return None
    return write_json(target, {"model": "expert", "env": env_cfg.get("name"), **summarize(tally)})


def sweep_table(sweep_dir: str | os.PathLike, *, models: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                expert: dict | None = None, records: Sequence[tables.RunRecord] | None = None) -> tables.Table:
    """The table of a sweep folder: its runs aggregated against what ``sweep.json`` expects
    (``models``/``seeds`` replace those), with the expert's row when there is one."""
    expected = expected_runs(Path(sweep_dir), models, seeds)
    records = tables.collect_runs(sweep_dir) if records is None else records
    expert = expert if expert is not None else tables.load_expert_summary(sweep_dir)
    row_keys = expected.row_keys or tables.infer_row_keys(records, ignore=NEVER_ROW_KEYS)
    return tables.aggregate(records, keys=row_keys, expected_variants=expected.variants,
                            expected_models=expected.models, expected_seeds=expected.seeds, expert=expert,
                            paper=tables.PAPER if row_keys == (tables.MODEL_KEY,) else None)


__all__ = ["Launcher", "SweepError", "expert_reference", "plan_sweep", "run_in_process", "run_sweep", "sweep_table"]
