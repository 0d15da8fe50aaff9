"""`tnd-curves`: learning curves of a sweep's runs (validation catch rate over training steps).

    tnd-table --experiment learning_curves      # first: the runs (multirun/learning_curves/pong/default)
    tnd-curves                                  # -> outputs/tables/validation_curves-pong-default.{png,csv,md}
    tnd-curves --publish                        # -> results/ (refreshes the committed figure)
    tnd-curves --env atari_pong --scale smoke   # multirun/learning_curves/atari_pong/smoke
    tnd-curves --tolerance 0.01 --metric eval_catches_per_round

Reads every run folder's metrics.jsonl under --sweep-dir (the trainer's periodic
evaluation on the validation games, every train.eval_every steps), averages each model's
curve over its seeds (mean and 95% Student-t interval; a rate's interval clipped to
[0, 1]), finds each model's plateau step (the first evaluated step from which the mean
never improves by more than --tolerance, absolute) and writes <name>.png (all models, one
figure), <name>.csv (model, step, mean, lo, hi, n_seeds) and <name>.md (per model: the
plateau step, the best mean and the value at the last step), printing the Markdown.

Exit status: 0 on success, 2 for bad input (a missing folder, no evaluation rows).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tnd.app.sweep import DEFAULT_SCALE, OUTPUT_DIR, PUBLISHED_DIR, default_sweep_dir, output_name
from tnd.evaluation import curves

EXPERIMENT = "learning_curves"  # the sweep (tnd-table --experiment learning_curves writes learning_curves-*.*)
NAME = "validation_curves"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tnd-curves", description=__doc__.split("Exit status")[0].strip(),
        epilog=("Run the sweep first with `tnd-table --experiment learning_curves` (train.eval_every > 0 "
                "writes the eval_* rows). Only finished runs are drawn unless --all-runs is given."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", default="pong", help="the sweep's environment (default: %(default)s)")
    parser.add_argument("--scale", default=DEFAULT_SCALE, help="the sweep's scale (default: %(default)s)")
    parser.add_argument("--sweep-dir", type=Path,
                        help=f"folder holding the run folders (default: multirun/{EXPERIMENT}/<env>/<scale>)")
    parser.add_argument("--results-dir", type=Path,
                        help=f"where the outputs go (default: {OUTPUT_DIR}; with --publish: {PUBLISHED_DIR})")
    parser.add_argument("--publish", action="store_true",
                        help=f"write to {PUBLISHED_DIR}/, refreshing the repository's committed figure")
    parser.add_argument("--name", help=f"file stem of the outputs (default: {NAME}-<env>-<scale>)")
    parser.add_argument("--metric", default=curves.DEFAULT_METRIC,
                        help="metrics.jsonl column to draw (default: %(default)s; e.g. eval_catches_per_round, eval_score)")
    parser.add_argument("--tolerance", type=float, default=curves.DEFAULT_TOLERANCE,
                        help="plateau: largest later gain of the mean that still counts as no improvement, "
                             "in the metric's units (default: %(default)s)")
    parser.add_argument("--all-runs", action="store_true",
                        help="also draw failed and unfinished runs' curves (up to where they stopped)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.sweep_dir = args.sweep_dir or default_sweep_dir(EXPERIMENT, args.env, args.scale)
    args.name = args.name or output_name(NAME, args.env, args.scale)
    try:
        if not args.tolerance >= 0:
            raise curves.CurveError(f"--tolerance must be >= 0, got {args.tolerance}.")
        statuses = ("ok", "failed", "unfinished") if args.all_runs else ("ok",)
        runs, skipped = curves.collect_curves(args.sweep_dir, args.metric, statuses=statuses)
        if not runs:
            which = "run folders" if args.all_runs else "finished run folders"
            raise curves.CurveError(
                f"No '{args.metric}' rows in the metrics.jsonl of the {which} under '{args.sweep_dir}' "
                f"({len(skipped)} folder(s) found). Train with train.eval_every > 0 "
                "(tnd-table --experiment learning_curves), or pass --all-runs for unfinished runs."
            )
        clip = curves.RATE_RANGE if args.metric in curves.RATE_METRICS else None
        aggregated = curves.aggregate_curves(runs, clip=clip)
        markdown = curves.render_curves_markdown(aggregated, metric=args.metric, tolerance=args.tolerance, skipped=skipped)
    except curves.CurveError as exc:
        print(f"tnd-curves: error: {exc}", file=sys.stderr)
        return 2
    results = args.results_dir or (PUBLISHED_DIR if args.publish else OUTPUT_DIR)
    outputs = [
        curves.plot_curves(aggregated, results / f"{args.name}.png", metric=args.metric, tolerance=args.tolerance),
        curves.write_curves_csv(aggregated, results / f"{args.name}.csv"),
        curves.write_curves_markdown(aggregated, results / f"{args.name}.md", metric=args.metric,
                                    tolerance=args.tolerance, skipped=skipped),
    ]
    print(markdown)
    print("[tnd-curves] wrote " + ", ".join(str(p) for p in outputs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
