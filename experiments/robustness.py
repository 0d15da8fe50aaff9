"""`tnd-table --robustness`, `--memory` and `--validation`: a finished table's runs measured again.

    tnd-table --robustness                  # default scale's runs -> outputs/tables/pong_table-pong-default-robustness.*
    tnd-table --memory                      # catch rate against k steps played blind -> ...-memory.*
    tnd-table --validation                  # the runs on their validation games -> ...-validation.*
    tnd-table --robustness scale=paper --publish                  # the paper-scale runs, into results/
    tnd-table --robustness --perturbations noise_0.03,delay_1     # some columns only (the unperturbed one first)

No training: every finished run of the sweep folder is restored from its checkpoint and
plays its own test games once per column (conf/table/robustness.yaml), measurements kept in
the run folder so a second call only renders. ``--validation`` plays the runs' validation
games instead (``eval.validation_seed``, unperturbed): the figures on which to choose between
two finished sweeps (e.g. with and without the tuned hyperparameters), never the test games.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from experiments.common import CONF_DIR
from tnd.evaluation import robustness as rb
from tnd.evaluation.table import MODEL_KEY, RunRecord, choose_runs, variant_labels

SETTINGS_FILE = Path(CONF_DIR) / "table" / "robustness.yaml"


def finished_runs(records: Sequence[RunRecord], keys: Sequence[str] = (MODEL_KEY,)) -> dict[Path, str | None]:
    """The finished run folder that counts (the table's own choice, `choose_runs`) per (row,
    seed) of a sweep whose rows are the values of ``keys`` (the swept keys but the seed), each
    with its row's label where a model has several rows (an ablation's variants, plain BC
    beside DAgger), else None (the model's row)."""
    finished = [r for r in records if r.status == "ok" and r.path is not None]
    latest, _, _ = choose_runs(finished, tuple(keys))
    variants = list(dict.fromkeys(variant for variant, _ in latest))
    several = len({v[list(keys).index(MODEL_KEY)] for v in variants}) < len(variants)
    labels = dict(zip(variants, variant_labels(variants, keys))) if several else {}
    return {latest[k].path: labels.get(k[0]) for k in sorted(latest, key=str)}


KINDS = ("robustness", "memory", "validation")


def validation_measurements(records: Sequence[RunRecord], progress: bool = True) -> list[rb.RunMeasurement]:
    """Every finished run of ``records`` on its validation games (kept in its run folder, so
    runs measured by ``--validation`` before are not played again)."""
    from tnd.app.robustness import measure_runs

    settings = rb.load_perturbations(SETTINGS_FILE)
    runs = [r.path for r in records if r.status == "ok" and r.path is not None]
    return measure_runs(runs, settings.select([rb.UNPERTURBED]), settings=settings, smoothness=False,
                        progress=progress, games="validation")


def write_robustness(kind: str, records: Sequence[RunRecord], results_dir: Path, name: str,
                     perturbations: str | None = None, progress: bool = True,
                     keys: Sequence[str] = (MODEL_KEY,)) -> tuple[str, list[Path]]:
    """Measures the runs for ``kind`` (one of `KINDS`); writes ``<name>-<kind>.{md,csv,png}``,
    one row per value of the row ``keys`` (a model, or a variant of one)."""
    from tnd.app.robustness import measure_runs

    if kind not in KINDS:
        raise rb.RobustnessError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    settings = rb.load_perturbations(SETTINGS_FILE)
    names = None if perturbations is None else [n.strip() for n in perturbations.split(",") if n.strip()]
    if kind == "memory":
        columns = settings.memory_columns()
    else:
        columns = settings.select([rb.UNPERTURBED] if kind == "validation" else names)
    runs = finished_runs(records, keys)
    if not runs:
        raise rb.RobustnessError("No finished runs in the sweep folder: run the table first (tnd-table).")
    if kind == "memory":
        caption = (f"# Memory: catch rate with the ball hidden for k steps ({len(runs)} runs)\n\n"
                   f"The ball's observed position is held at its last seen value (the no-ball flag stays 0) for k "
                   f"consecutive steps; an occlusion starts with chance {settings.occlusion_rate:g} on each step after "
                   "one where the ball was seen. Test games of each run (its eval.seed), no retraining.")
    elif kind == "validation":
        caption = (f"# Validation games: the table's runs on the games a choice may look at ({len(runs)} runs)\n\n"
                   "Each run's checkpoint plays its validation games (eval.validation_seed, eval.num_games), "
                   "disjoint from its test games; no retraining, no perturbation.")
    else:
        caption = (f"# Robustness: the table's runs under perturbations ({len(runs)} runs)\n\n"
                   "Each run's checkpoint plays its own test games (eval.seed, eval.num_games) once per column; "
                   "no retraining. Perturbations: conf/table/robustness.yaml.")
    measurements = measure_runs(runs, columns, settings=settings, smoothness=kind == "robustness", progress=progress,
                                games="validation" if kind == "validation" else "test")
    measurements = [dataclasses.replace(m, row=row) for m, row in zip(measurements, runs.values())]
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
