"""Sweeps: the jobs of an experiment, run until each finished once, aggregated into a table.

    from tnd.app import sweep
    jobs, keys = sweep.plan_sweep(["model=lstm,rnn", "seed=0,1", "scale=smoke"], experiment="pong_table")
    sweep.run_sweep(jobs, "runs/table", keys=keys)      # here, one job after another (resumable)
    table = sweep.sweep_table("runs/table")               # rows: models (mean, 95% interval over seeds)

``tnd-table`` does the same with a Hydra multirun of ``tnd-train`` as the launcher. How it works:

1. **Plan** (`plan`): the experiment's ``hydra.sweeper.params`` with the overrides on top
   (Hydra's rules: the command line wins) give the jobs, models x seeds (x the values of any
   other key the experiment sweeps: each combination but the seed is one row, a *variant*).
   They are saved in ``<sweep_dir>/sweep.json`` so aggregating later knows them too. Only keys
   of ``hydra.sweeper.params`` may vary; model and seed always must be set.
2. **Folders are stable**: a job lands in ``<sweep_dir>/<key>=<value>,...`` of its swept keys
   (``model=lstm,seed=0``; an ablation's ``graph=ring,model.options.dynamics=gated,model=tnd,seed=0``)
   whatever else is overridden, and also when the command line narrows a swept key. With
   stacked seeds a model's seeds train as one program into ``<folder>/seed=<k>/``.
3. **Resume** (`status`, `run`): jobs whose folder holds ``summary.json`` are skipped; the
   others (never started, unfinished or failed earlier) are launched as few groups as possible
   over exactly those jobs (disjoint grids of the swept keys' values); an unfinished job
   resumes from its checkpoint. A job that fails is not retried in the same call; a finished
   folder made with other overrides is refused, not reused.
4. **Aggregate** (`sweep_table`): every run folder (identified by its ``run.json``) into a
   `tnd.evaluation.table.Table`; an ``expert_summary.json`` at the sweep root
   (`expert_reference`) becomes the expert's reference row.
5. **Choose** (`choose`): one table from several finished sweeps of the same table (e.g.
   with and without the tuned hyperparameters), each row kept from the sweep whose runs do
   better on their validation games (``tnd-table --choose-between``).
"""

from tnd.app.sweep.plan import (
    DEFAULT_EXPERIMENT, DEFAULT_SCALE, NEVER_ROW_KEYS, OUTPUT_DIR, PUBLISHED_DIR, SWEEP_FILE, SWEPT_KEYS, Expected, LaunchGroup, SweepError,
    default_sweep_dir, expected_runs, fixed_overrides, group_jobs, job_dirname, job_id, job_values, launch_groups,
    output_name, parse_overrides, plan_jobs, split_overrides, stacks_seeds, swept_keys, write_sweep_file,
)
from tnd.app.sweep.progress import Eta, JobTiming, SweepProgress, model_lengths, sweep_eta
from tnd.app.sweep.run import Launcher, expert_reference, plan_sweep, run_in_process, run_sweep, sweep_table
from tnd.app.sweep.status import best_by_job, check_current_config, check_not_stale, record_id, stamp

__all__ = [
    "DEFAULT_EXPERIMENT", "DEFAULT_SCALE", "NEVER_ROW_KEYS", "OUTPUT_DIR", "PUBLISHED_DIR", "SWEEP_FILE", "SWEPT_KEYS", "Eta", "Expected", "JobTiming",
    "LaunchGroup", "Launcher", "SweepError", "SweepProgress", "best_by_job", "check_current_config", "check_not_stale", "default_sweep_dir",
    "expected_runs", "expert_reference", "fixed_overrides", "group_jobs", "job_dirname", "job_id", "job_values",
    "launch_groups", "model_lengths", "output_name", "parse_overrides", "plan_jobs", "plan_sweep", "record_id",
    "run_in_process", "run_sweep", "split_overrides", "stacks_seeds", "stamp", "sweep_eta", "sweep_table",
    "swept_keys", "write_sweep_file",
]
