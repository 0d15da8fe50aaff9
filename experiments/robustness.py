"""`tnd-table --robustness` and `tnd-table --memory`: a finished table's runs under perturbations.

    tnd-table --robustness                  # default scale's runs -> outputs/tables/pong_table-pong-default-robustness.*
    tnd-table --memory                      # catch rate against k steps played blind -> ...-memory.*
    tnd-table --robustness scale=paper --publish                  # the paper-scale runs, into results/
    tnd-table --robustness --perturbations noise_0.03,delay_1     # some columns only (the unperturbed one first)

No training: every finished run of the sweep folder is restored from its checkpoint and
plays its own test games once per column (conf/table/robustness.yaml), measurements kept in
the run folder so a second call only renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from experiments.common import CONF_DIR
from tnd.evaluation import robustness as rb
from tnd.evaluation.table import RunRecord

SETTINGS_FILE = Path(CONF_DIR) / "table" / "robustness.yaml"


def finished_runs(records: Sequence[RunRecord]) -> list[Path]:
    """The newest finished run folder per (model, seed) of a sweep."""
    latest: dict[tuple, RunRecord] = {}
    for record in records:
        if record.status == "ok" and record.path is not None:
            key = (record.model, record.seed)
            if key not in latest or (record.path / "summary.json").stat().st_mtime > (
                    latest[key].path / "summary.json").stat().st_mtime:
                latest[key] = record
    return [latest[k].path for k in sorted(latest, key=str)]


def write_robustness(kind: str, records: Sequence[RunRecord], results_dir: Path, name: str,
                     perturbations: str | None = None, progress: bool = True) -> tuple[str, list[Path]]:
    """Measures the runs for ``kind`` ("robustness" or "memory"); writes ``<name>-<kind>.{md,csv,png}``."""
    from tnd.app.robustness import measure_runs

    settings = rb.load_perturbations(SETTINGS_FILE)
    names = None if perturbations is None else [n.strip() for n in perturbations.split(",") if n.strip()]
    columns = settings.memory_columns() if kind == "memory" else settings.select(names)
    runs = finished_runs(records)
    if not runs:
        raise rb.RobustnessError("No finished runs in the sweep folder: run the table first (tnd-table).")
    if kind == "memory":
        caption = (f"# Memory: catch rate with the ball hidden for k steps ({len(runs)} runs)\n\n"
                   f"The ball's observed position is held at its last seen value (the no-ball flag stays 0) for k "
                   f"consecutive steps; an occlusion starts with chance {settings.occlusion_rate:g} on each step after "
                   "one where the ball was seen. Test games of each run (its eval.seed), no retraining.")
    else:
        caption = (f"# Robustness: the table's runs under perturbations ({len(runs)} runs)\n\n"
                   "Each run's checkpoint plays its own test games (eval.seed, eval.num_games) once per column; "
                   "no retraining. Perturbations: conf/table/robustness.yaml.")
    measurements = measure_runs(runs, columns, settings=settings, smoothness=kind == "robustness", progress=progress)
    table = rb.robustness_table(measurements, columns, caption=caption)
    stem = results_dir / f"{name}-{kind}"
    numeric = [int(c.set.get("occlusion_steps", 0)) for c in columns] if kind == "memory" else None
    outputs = [
        rb.write_markdown(table, stem.with_suffix(".md")),
        rb.write_csv(table, stem.with_suffix(".csv")),
        rb.plot_columns(table, stem.with_suffix(".png"), numeric_x=numeric,
                        xlabel="k: steps with the ball hidden" if kind == "memory" else None),
    ]
    return rb.render_markdown(table), outputs
