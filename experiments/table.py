"""`tnd-table`: run the Pong table sweep (Hydra multirun of tnd-train) and aggregate it.

    tnd-table                                   # default scale: sweep (seeds stacked, one job per CPU core), then outputs/tables/pong_table-pong-default.{md,csv,png}
    tnd-table --jobs 1                          # one job at a time
    tnd-table --publish                         # the same, refreshing the committed results/pong_table-pong-default.*
    tnd-table scale=paper                       # -> multirun/pong_table/pong/paper, outputs/tables/pong_table-pong-paper.*
    tnd-table --robustness                      # no training: the finished runs under perturbations (+ smoothness)
    tnd-table --memory                          # no training: catch rate against k steps with the ball hidden
    tnd-table --validation                      # no training: the finished runs on their validation games
    tnd-table --choose-between A,B              # no training: one table, each row from the sweep folder better on validation games
    tnd-table env=atari_pong scale=smoke        # -> multirun/pong_table/atari_pong/smoke, ...pong_table-atari_pong-smoke.*
    tnd-table --experiment tnd_ablation         # TND ablation: one row per variant -> tnd_ablation-pong-default.*
    tnd-table --experiment learning_curves      # longer runs with periodic validation evals (then tnd-curves)
    tnd-table hydra/launcher=joblib hydra.launcher.n_jobs=2
    tnd-table hydra/launcher=submitit_slurm hydra.launcher.partition=gpu
    tnd-table model=tnd,lstm seed=0 train.steps=20   # any trainer override passes through
    tnd-table --no-stack-seeds                  # one job per seed (default: each model's seeds as one vmapped program)
    tnd-table --aggregate-only                  # no training: tables from the existing run folders
    tnd-table --aggregate-only --sweep-dir multirun/2026-11-23/10-00-00

The sweep itself (planning, resuming, progress, aggregation) is `tnd.app.sweep`; this module is
its command line: it composes the experiment with the trainer command (``--train-command``),
launches each group as a Hydra multirun of it, and writes the table (``outputs/tables/``;
``--publish``: ``results/``, the committed tables). Exit status: 0 when every expected run
finished, 1 when the table lists failed, unfinished or missing runs after a sweep, 2 for bad input.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


from experiments.multirun import Composed, compose_sweep, launcher_overrides, multirun
from experiments.robustness import KINDS
from tnd.app import sweep
from tnd.app.sweep import SweepError
from tnd.evaluation import table as tables

OUTPUT_DIR, PUBLISHED_DIR = sweep.OUTPUT_DIR, sweep.PUBLISHED_DIR


def check_named_models(models: str | None, records: Sequence[tables.RunRecord], sweep_dir: Path) -> None:
    """``--models``: every model named must have a run folder under ``sweep_dir``; a name
    that has none (a typo) fails with the models that do (`SweepError`)."""
    named = [m.strip() for m in (models or "").split(",") if m.strip()]
    found = sorted({str(r.model) for r in records if r.model})
    absent = [m for m in named if m not in found]
    if absent:
        there = f"the models there: {', '.join(found)}" if found else "it holds no run folders"
        raise SweepError(f"--models {','.join(absent)}: no run folder of {', '.join(absent)} in {sweep_dir}; "
                         f"{there}.")


def warn_unreadable(records: Sequence[tables.RunRecord]) -> None:
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
    parser.add_argument("--experiment", default=sweep.DEFAULT_EXPERIMENT, help="experiment config to sweep (default: %(default)s)")
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
                             "seed unless graph.seed is set, and so does every job with DAgger rounds, whose seeds "
                             "play their own games); --no-stack-seeds: one job per seed")
    parser.add_argument("--jobs", type=int, default=None,
                        help="jobs at a time on this machine (default: one per CPU core, one on a GPU machine; "
                             "ignored with hydra/launcher=...)")
    measure = parser.add_mutually_exclusive_group()
    measure.add_argument("--robustness", action="store_true",
                         help="no training: the sweep's finished runs under perturbations, plus the smoothness "
                              "columns (conf/table/robustness.yaml) -> <name>-robustness.{md,csv,png}")
    measure.add_argument("--memory", action="store_true",
                         help="no training: catch rate against k steps with the ball hidden -> <name>-memory.*")
    measure.add_argument("--validation", action="store_true",
                         help="no training: the finished runs on their validation games (eval.validation_seed), the "
                              "figures to choose between sweeps on -> <name>-validation.*")
    measure.add_argument("--choose-between", metavar="DIR,DIR",
                         help="no training: one table from finished sweep folders (comma-separated), each row taken "
                              "from the folder whose runs do better on their validation games, the same rule for "
                              "every model -> <name>-chosen.{md,csv,png}")
    parser.add_argument("--perturbations", help="--robustness: comma-separated columns (default: all)")
    parser.add_argument("--no-retry-failed", dest="retry_failed", action="store_false", help="do not relaunch runs that failed before")
    parser.add_argument("--train-command", default=f"{shlex.quote(sys.executable)} -m experiments.train",
                        help="command that runs the Hydra trainer app (default: python -m experiments.train)")
    return parser


def _report(measure: Callable[[], tuple[str, list[Path]]]) -> int:
    """Runs a measurement of finished runs (no training) and prints its text and files: 0; a
    library error (a bad column, a damaged checkpoint, a sweep not finished) is one line: 2;
    Ctrl-C keeps what was measured (each run folder's robustness.json): 130."""
    try:
        text, outputs = measure()
    except ValueError as exc:
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


def _measure_runs(kind: str, records, sweep_dir: Path, results_dir: Path, name: str, perturbations: str | None) -> int:
    """``--robustness``, ``--memory``, ``--validation``: the finished runs measured again, one row per
    row of the sweep's table (experiments/robustness.py)."""
    from experiments.robustness import write_robustness

    def measure() -> tuple[str, list[Path]]:
        keys = sweep.expected_runs(sweep_dir).row_keys or tables.infer_row_keys(records, ignore=sweep.NEVER_ROW_KEYS)
        return write_robustness(kind, records, results_dir, name, perturbations, keys=keys)

    return _report(measure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    measure = next((kind for kind in KINDS if getattr(args, kind)), None)
    args.aggregate_only = args.aggregate_only or measure is not None  # measuring never trains
    if args.perturbations and not args.robustness:
        parser.error("--perturbations goes with --robustness")
    if args.choose_between is not None:
        if args.sweep_dir is not None:
            parser.error("--choose-between names the sweep folders itself; leave out --sweep-dir")
        return _choose(args)
    sweep_dir = args.sweep_dir or Path("multirun")
    try:
        task, hydra_, scale = sweep.split_overrides(args.overrides)
        train_command = shlex.split(args.train_command)
        env = sweep.job_values(task).get("env")
        composed = None
        if not args.aggregate_only or (args.sweep_dir is None and env is None):  # else no need to compose
            composed = compose_sweep(train_command, args.experiment, task, hydra_)
            env = env or composed.env
        sweep_dir = args.sweep_dir or sweep.default_sweep_dir(args.experiment, env, scale)
        results_dir = args.results_dir or (PUBLISHED_DIR if args.publish else OUTPUT_DIR)
        if not args.aggregate_only:
            _train(args, composed, task, hydra_, train_command, sweep_dir)
        records = tables.collect_runs(sweep_dir)
        warn_unreadable(records)
        check_named_models(args.models, records, sweep_dir)
        if composed is None and env is None:  # aggregate-only of a given folder: the runs' own env
            env = next((str(r.metrics["env"]) for r in records if r.status == "ok" and "env" in r.metrics), None)
        name = args.name or sweep.output_name(args.experiment, env, scale)
        if measure is not None:
            return _measure_runs(measure, records, sweep_dir, results_dir, name, args.perturbations)
        if args.expert_summary is None:
            sweep.expert_reference(sweep_dir, records)
        expert = tables.load_expert_summary(args.expert_summary or sweep_dir)
        if args.expert_summary is not None and expert is None:
            raise SweepError(f"--expert-summary {args.expert_summary} does not exist.")
        table = sweep.sweep_table(sweep_dir, models=_names(args.models), seeds=_seeds(args.seeds), expert=expert,
                                  records=records)
    except tables.TableError as exc:
        print(f"tnd-table: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        finished = sum(1 for r in tables.collect_runs(sweep_dir) if r.status == "ok") if sweep_dir.is_dir() else 0
        print(f"tnd-table: interrupted; {finished} run(s) finished in {sweep_dir}; run the same command again to "
              "resume (finished runs are kept, unfinished ones continue from their last checkpoint).",
              file=sys.stderr, flush=True)
        return 130
    outputs = [tables.write_markdown(table, results_dir / f"{name}.md"), tables.write_csv(table, results_dir / f"{name}.csv"),
               tables.plot_table(table, results_dir / f"{name}.png")]
    print()
    print(tables.render_markdown(table))
    print("[tnd-table] wrote " + ", ".join(str(p) for p in outputs), flush=True)
    if table.n_problems and not args.aggregate_only:
        print(f"[tnd-table] {table.n_problems} expected run(s) did not finish; the table lists them.", file=sys.stderr)
        return 1
    return 0


def _choose(args) -> int:
    """``--choose-between``: the sweeps' runs on their validation games, then one table of the
    rows each keeps (`tnd.app.sweep.choose`) -> ``<name>-chosen.{md,csv,png}``."""
    from experiments.robustness import validation_measurements
    from tnd.app.sweep.choose import Candidate, choose_by_validation, render_choice

    def measure() -> tuple[str, list[Path]]:
        folders = [Path(d.strip()) for d in args.choose_between.split(",") if d.strip()]
        absent = [str(f) for f in folders if not f.is_dir()]
        if absent:
            raise SweepError(f"--choose-between: no sweep folder {', '.join(absent)}.")
        labels = [f.name for f in folders]
        if len(set(labels)) != len(labels):  # same folder names under different parents: the paths tell them apart
            labels = [str(f) for f in folders]
        candidates = []
        for label, folder in zip(labels, folders):
            records = tables.collect_runs(folder)
            warn_unreadable(records)
            print(f"[tnd-table] {folder}: the finished runs on their validation games", flush=True)
            candidates.append(Candidate(label, records, validation_measurements(records)))
        expected = sweep.expected_runs(folders[0], _names(args.models), _seeds(args.seeds))
        expert = tables.load_expert_summary(args.expert_summary or folders[0])
        choice = choose_by_validation(candidates, expected=expected, expert=expert)
        _, _, scale = sweep.split_overrides(args.overrides)
        name = f"{args.name or sweep.output_name(args.experiment, next(iter(choice.table.envs), None), scale)}-chosen"
        results_dir = args.results_dir or (PUBLISHED_DIR if args.publish else OUTPUT_DIR)
        text = render_choice(choice)
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / f"{name}.md").write_text(text)
        return text, [results_dir / f"{name}.md", tables.write_csv(choice.table, results_dir / f"{name}.csv"),
                      tables.plot_table(choice.table, results_dir / f"{name}.png")]

    return _report(measure)


def _train(args, composed: Composed, task: list[str], hydra_: list[str], train_command: list[str],
           sweep_dir: Path) -> None:
    """Plans the sweep, records it in ``sweep.json`` and runs what is left as Hydra multiruns."""
    launcher, how = launcher_overrides(hydra_, args.jobs)
    print(f"[tnd-table] {how}", flush=True)
    jobs = sweep.plan_jobs(composed.params, args.experiment, task)
    keys = sweep.swept_keys(composed.params)
    sweep.check_not_stale(jobs, sweep.best_by_job(sweep_dir, keys), keys)
    sweep.write_sweep_file(sweep_dir, args.experiment, list(args.overrides), jobs, keys)
    launch = multirun(train_command, [*launcher, *hydra_], sweep_dir, compilation_cache=composed.compilation_cache)
    sweep.run_sweep(jobs, sweep_dir, launch=launch, keys=keys,
                    stack_seeds=args.stack_seeds, retry_failed=args.retry_failed,
                    dagger_rounds=composed.dagger_rounds)


def _names(models: str | None) -> list[str] | None:
    return [m.strip() for m in models.split(",") if m.strip()] if models else None


def _seeds(seeds: str | None) -> list[int] | None:
    try:
        return [int(s) for s in seeds.split(",") if s.strip()] if seeds else None
    except ValueError as exc:
        raise SweepError(f"--seeds takes comma-separated integers, got '{seeds}'.") from exc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
