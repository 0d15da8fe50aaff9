"""One table from several finished sweeps: each row taken from the sweep that does best on validation games.

    from tnd.app.sweep.choose import Candidate, choose_by_validation, render_choice
    candidates = [Candidate("default", records_a, validation_a), Candidate("untuned", records_b, validation_b)]
    choice = choose_by_validation(candidates, expected=sweep.expected_runs(dir_a))
    choice.table           # the chosen runs on their test games (a `tables.Table`)
    render_choice(choice)  # Markdown: every sweep's validation figures per row, what was chosen, then the table

Two sweeps of the same table that differ in one decision (e.g. with and without each
model's tuned hyperparameters, ``tuned=none``) are the same tuning effort for every model
when the choice between them is made the same way for every row, from figures the test
games never enter: each run's validation games (``eval.validation_seed``; measured by
``tnd-table --validation``). A row (a variant: the sweep's row keys, usually the model)
keeps the sweep with the higher mean validation ``metric`` over its seeds (the first
listed on a tie), and the table shows that sweep's runs on their test games. The choice is
refused unless every row has the same finished seeds in every sweep.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from tnd.app.sweep.plan import Expected, SweepError
from tnd.evaluation import table as tables
from tnd.evaluation.robustness import UNPERTURBED, RunMeasurement

DEFAULT_METRIC = "catch_rate"  # what tnd-tune maximises on validation games, so the same criterion here
SCORE = "score"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One finished sweep: ``records`` (its run folders, test-game summaries) and
    ``validation`` (the same runs' measurements on their validation games)."""

    label: str
    records: Sequence[tables.RunRecord]
    validation: Sequence[RunMeasurement]


@dataclasses.dataclass(frozen=True)
class Choice:
    """What was chosen: per row label, the candidate kept; each candidate's validation table
    (rows as in ``table``); ``table``: the kept runs on their test games."""

    metric: str
    labels: tuple[str, ...]                # the candidates, in the order given
    validation: Mapping[str, tables.Table]  # candidate label -> its runs on their validation games
    chosen: Mapping[str, str]               # row label -> candidate label
    table: tables.Table


def validation_records(records: Sequence[tables.RunRecord],
                       measurements: Sequence[RunMeasurement]) -> list[tables.RunRecord]:
    """The finished ``records`` with their game metrics replaced by their validation games'
    (matched by run folder); a finished run without a measurement is refused."""
    measured = {str(m.path): m.columns[UNPERTURBED] for m in measurements}
    out = []
    for record in records:
        if record.status != "ok":
            out.append(record)
            continue
        games = measured.get(str(record.path))
        if games is None:
            raise SweepError(f"The run {record.path} has no validation measurement: measure the sweep first "
                             "(tnd-table --validation --sweep-dir <its sweep>).")
        out.append(dataclasses.replace(record, metrics={**record.metrics, **games}))
    return out


def choose_by_validation(candidates: Sequence[Candidate], *, expected: Expected,
                         expert: Mapping[str, object] | None = None, metric: str = DEFAULT_METRIC) -> Choice:
    """Per row, the candidate whose runs have the higher mean validation ``metric`` (see the module)."""
    labels = tuple(c.label for c in candidates)
    if len(candidates) < 2 or len(set(labels)) != len(labels):
        raise SweepError(f"Choosing needs two or more sweeps with distinct names, got {list(labels)}.")
    if metric not in tables.METRIC:
        raise SweepError(f"Unknown metric {metric!r} to choose on; declared: {', '.join(tables.METRIC)}.")
    keys = expected.row_keys or (tables.MODEL_KEY,)

    def table_of(records: Sequence[tables.RunRecord], expert_row=None) -> tables.Table:
        return tables.aggregate(records, keys=keys, expected_variants=expected.variants,
                                expected_models=expected.models, expected_seeds=expected.seeds, expert=expert_row,
                                paper=tables.PAPER if keys == (tables.MODEL_KEY,) else None)

    validation = {c.label: table_of(validation_records(c.records, c.validation)) for c in candidates}
    rows = {label: {row.label: row for row in table.rows} for label, table in validation.items()}
    first = validation[labels[0]]
    chosen: dict[str, str] = {}
    for row in first.rows:
        others = [rows[label].get(row.label) for label in labels]
        seeds = [None if other is None else (other.seeds, bool(other.problems)) for other in others]
        if any(s != (row.seeds, False) for s in seeds) or not row.seeds:
            found = "; ".join(f"{label}: " + ("no row" if o is None else f"finished seeds {list(o.seeds)}"
                                              + (f", {len(o.problems)} not finished" if o.problems else ""))
                              for label, o in zip(labels, others))
            raise SweepError(f"{row.label}: the sweeps do not hold the same finished seeds ({found}); finish every "
                             "sweep first (the same tnd-table command resumes each), so that every row is chosen on "
                             "the same seeds.")
        means = [o.stats[metric].mean for o in others]
        chosen[row.label] = labels[max(range(len(labels)), key=lambda i: (means[i], -i))]
    extra = sorted({r for label in labels[1:] for r in rows[label]} - set(chosen))
    if extra:
        raise SweepError(f"Rows {extra} are not in the first sweep ({labels[0]}): choose between sweeps of the same "
                         "table.")
    label_of = {tuple(dict(row.variant).get(k) for k in keys): row.label for row in first.rows}
    kept = [record for candidate in candidates for record in candidate.records
            if chosen.get(label_of.get(tables.variant_of(record, keys))) == candidate.label]
    return Choice(metric, labels, validation, chosen, table_of(kept, expert))


def render_choice(choice: Choice) -> str:
    """Markdown: the choice (every sweep's validation figures per row, the one kept), then the table."""
    metric = tables.METRIC[choice.metric]
    tables_ = [choice.validation[label] for label in choice.labels]
    score = next((SCORE for t in tables_ for r in t.rows if SCORE in t.metrics and math.isfinite(r.stats[SCORE].mean)
                  and choice.metric != SCORE), None)  # a second figure where the env keeps a score
    header = ["Row"] + [f"{label}: {metric.label.lower()}" for label in choice.labels]
    header += [f"{label}: score" for label in choice.labels] if score else []
    header += ["Kept"]
    lines = [
        f"# One table from {len(choice.labels)} sweeps, each row chosen on validation games",
        "",
        f"Each row keeps the sweep whose runs have the higher mean validation {metric.label.lower()} over "
        "its seeds (each run's eval.validation_seed games, disjoint from its test games; the first sweep listed on a "
        "tie). The same rule for every row, and the test games enter no choice. Validation figures: mean ± 95% "
        "interval over seeds.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 2) + ["---"]) + "|",
    ]
    for row in tables_[0].rows:
        rows = [{r.label: r for r in t.rows}[row.label] for t in tables_]
        cells = [row.label] + [tables.format_interval(choice.metric, r.stats[choice.metric], r.n_seeds) for r in rows]
        cells += [tables.format_interval(score, r.stats[score], r.n_seeds) for r in rows] if score else []
        lines.append("| " + " | ".join(cells + [f"**{choice.chosen[row.label]}**"]) + " |")
    lines += ["", "## The kept runs on their test games", "", tables.render_markdown(choice.table)]
    return "\n".join(lines)


__all__ = ["DEFAULT_METRIC", "Candidate", "Choice", "choose_by_validation", "render_choice", "validation_records"]
