"""A `Table` as Markdown, CSV and PNG (plotted intervals clipped to each metric's range)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tnd.evaluation.table.aggregation import Table, TableRow
from tnd.evaluation.table import columns
from tnd.evaluation.table.columns import (
    MODEL_KEY,
    MODEL_LABELS,
    PAPER,
    SEED_KEY,
    PublishedFigures,
)
from tnd.evaluation.table.runs import RunRecord, run_value
from tnd.evaluation.table.statistics import Interval, TableError

# --------------------------------------------------------------------------- outputs


def _label(metric: str) -> str:
    return columns.METRIC[metric].label


def _fmt(metric: str, value: float) -> str:
    return columns.METRIC[metric].format(value)


def format_interval(metric: str, interval: Interval, n_row: int | None = None) -> str:
    """"0.812 ± 0.034"; "0.812 ± n/a" for one seed; "—" without any value."""
    if interval.n == 0:
        return "—"
    half = "n/a" if not math.isfinite(interval.half_width) else _fmt(metric, interval.half_width)
    text = f"{_fmt(metric, interval.mean)} ± {half}"
    if n_row is not None and interval.n != n_row:
        text += f" (n={interval.n})"
    return text


def _expert_cell(metric: str, expert: Mapping[str, object]) -> str:
    try:
        value = float(expert[metric])
    except (KeyError, TypeError, ValueError):
        return "—"
    return _fmt(metric, value) if math.isfinite(value) else "—"


def _problem_text(row: TableRow) -> str:
    parts = []
    for label, group in (("failed", row.failed), ("unfinished", row.unfinished), ("missing", row.missing)):
        if group:
            parts.append(f"{label}: seed {', '.join(str(r.seed) for r in group)}")
    return "; ".join(parts) if parts else "none"


def _paper_cell(model: str, paper: PublishedFigures = PAPER) -> str:
    if model in paper.values:
        return f"{paper.values[model]:.2f}"
    return "not published" if model in paper.models else "—"


def _env_definitions(table: Table) -> list:
    """The registered `EnvDefinition` of each env the table's runs played (None: not registered here).

    The envs are imported on first use (they bring JAX), so tables are read and written without them."""
    if not table.envs:
        return []
    from tnd.envs.registry import find_env

    return [find_env(e) for e in table.envs]


def _plays_paper_protocol(table: Table) -> bool:
    """Whether every run of ``table`` played the paper's protocol (`EnvDefinition.plays_paper_protocol`)."""
    return all(d is not None and d.plays_paper_protocol for d in _env_definitions(table))


def _env_note(table: Table) -> str:
    """The sentence on the runs' envs and the paper's protocol: the env's `EnvDefinition.table_note`
    (of the first env off the paper's protocol when several envs are pooled)."""
    envs, protocol = ", ".join(table.envs), (table.paper or PAPER).protocol
    definitions = _env_definitions(table)
    off_protocol = [d for d in definitions if d is None or not d.plays_paper_protocol]
    chosen = (off_protocol or definitions)[0]
    if chosen is None:
        from tnd.envs.registry import DEFAULT_TABLE_NOTE

        return DEFAULT_TABLE_NOTE.format(envs=envs, protocol=protocol)
    return chosen.table_sentence(envs, protocol)


def _paper_heading(table: Table) -> str:
    """"Paper", or, when our runs play another env, which protocol the paper's figures belong to."""
    if _plays_paper_protocol(table):
        return "Paper"
    return f"Paper, {(table.paper or PAPER).protocol} (another protocol)"


def _variant_text(record: RunRecord, keys: Sequence[str]) -> str:
    """``model=tnd, graph=ring`` for notes about single runs of a variant table."""
    return ", ".join(f"{k}={run_value(record, k)}" for k in keys)


def render_markdown(table: Table) -> str:
    """The table as Markdown: ours with intervals, the paper's figures beside, then notes.

    A variant table (``Table.is_variant_table``) has a "Variant" column of labels instead
    of "Model", and no paper column when ``table.paper`` is None.
    """
    paper = table.paper
    first = "Variant" if table.is_variant_table else "Model"
    paper_cols = [f"{_paper_heading(table)}: {_label(paper.metric).lower()} †"] if paper is not None else []
    header = [first, "Seeds (ok / expected)"] + [_label(m) for m in table.metrics] + paper_cols + ["Failed / unfinished / missing"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 2) + ["---"]) + "|"]
    for row in table.rows:
        cells = [row.label, f"{row.n_seeds} / {len(row.expected_seeds)}"]
        cells += [format_interval(m, row.stats[m], row.n_seeds) for m in table.metrics]
        cells += [_paper_cell(row.model, paper)] if paper is not None else []
        cells += [_problem_text(row)]
        lines.append("| " + " | ".join(cells) + " |")
    if table.expert is not None:
        cells = ["Expert (reference)", "—"] + [_expert_cell(m, table.expert) for m in table.metrics] + ["—"] * len(paper_cols) + ["—"]
        lines.append("| " + " | ".join(cells) + " |")

    notes = [
        "",
        "Ours: mean ± half-width of the 95% Student-t confidence interval over seeds "
        "(mean ± t₀.₉₇₅,ₙ₋₁·s/√n); \"n/a\" = one seed, interval undefined; \"—\" = no finished run. "
        "Score = points won − points lost per game.",
    ]
    if table.is_variant_table:
        notes.append("Variants: every combination of the swept keys " + ", ".join(f"`{k}`" for k in table.keys)
                     + "; a label names the values that differ between rows (the CSV has one column per key).")
    if paper is not None:
        notes.append(
            f"† The paper's published figures, not ours: {paper.citation}; "
            f"{paper.protocol}, {_label(paper.metric).lower()}; no intervals published. "
            "\"not published\" = a baseline the paper compares without a published number.")
    if table.envs:
        notes.append(_env_note(table))
    problems = [(row.label, r) for row in table.rows for r in row.problems] + [(None, r) for r in table.unidentified]
    if problems:
        keys = [MODEL_KEY, *(k for k in table.keys if k != MODEL_KEY), SEED_KEY]
        notes += ["", f"**Runs not counted ({len(problems)}):**", ""]
        for label, r in problems:
            where = f"`{r.path}`" if r.path is not None else "no run folder"
            why = {"failed": f"failed: {r.error}", "unfinished": "unfinished (no summary.json or error.json; killed or still running)",
                   "missing": "missing (expected by the sweep, never started)"}.get(r.status, r.status)
            if label is None:
                unknown = [k for k in keys if run_value(r, k) is None]
                why = (f"{r.status}; {' and '.join(unknown)} unknown (no {'/'.join(k + '=' for k in unknown)} in "
                       ".hydra/overrides.yaml, and none in its config or summary)"
                       + (f"; {r.error}" if r.status == "failed" and r.error else ""))
                label = _variant_text(r, table.keys) if table.is_variant_table else MODEL_LABELS.get(r.model, r.model)
            notes.append(f"- {label} seed {r.seed}: {why} — {where}")
    if table.duplicates:
        what = "variant" if table.is_variant_table else "model"
        notes += ["", f"Duplicate run folders ignored ({len(table.duplicates)}; another folder for the same {what} and seed counted):", ""]
        notes += [f"- {_variant_text(r, table.keys) if table.is_variant_table else r.model} seed {r.seed} ({r.status}) — `{r.path}`"
                  for r in table.duplicates]
    return "\n".join(lines + notes) + "\n"


def write_markdown(table: Table, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(table))
    return path


def _num(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else ""


CSV_ROW_COLUMNS: tuple[str, ...] = (
    "source", "model", "label", "n_seeds", "n_expected", "seeds", "n_failed", "failed_seeds",
    "n_unfinished", "unfinished_seeds", "n_missing", "missing_seeds",
)
CSV_PAPER_COLUMNS: tuple[str, ...] = ("paper_catches_per_round", "paper_citation")


def csv_columns(table: Table) -> tuple[str, ...]:
    """The row columns, one column per row key other than the model after "label" (a variant
    table), four per metric of the table (mean, ci95, low, high), the paper's."""
    extra = tuple(k for k in table.keys if k != MODEL_KEY)
    i = CSV_ROW_COLUMNS.index("label") + 1
    per_metric = tuple(f"{m}_{s}" for m in table.metrics for s in ("mean", "ci95", "low", "high"))
    return CSV_ROW_COLUMNS[:i] + extra + CSV_ROW_COLUMNS[i:] + per_metric + CSV_PAPER_COLUMNS


def write_csv(table: Table, path: str | os.PathLike) -> Path:
    """One line per model or variant (source "ours"), plus the expert (source "expert").

    ``<metric>_ci95`` is the interval half-width, ``_low``/``_high`` its ends; empty cells
    are undefined (one seed, no run). ``paper_catches_per_round`` is the paper's figure
    (empty when ``table.paper`` is None). A variant table has a column per row key, named
    by the key (e.g. ``graph``, ``model.options.dynamics``), holding the variant's value.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fieldnames = csv_columns(table)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        for row in table.rows:
            paper_value = table.paper.values.get(row.model) if table.paper is not None else None
            line = {
                **{k: v for k, v in row.variant if k != MODEL_KEY},
                "source": "ours", "model": row.model, "label": row.label,
                "n_seeds": row.n_seeds, "n_expected": len(row.expected_seeds),
                "seeds": " ".join(map(str, row.seeds)),
                "n_failed": len(row.failed), "failed_seeds": " ".join(str(r.seed) for r in row.failed),
                "n_unfinished": len(row.unfinished), "unfinished_seeds": " ".join(str(r.seed) for r in row.unfinished),
                "n_missing": len(row.missing), "missing_seeds": " ".join(str(r.seed) for r in row.missing),
                "paper_catches_per_round": _num(paper_value) if paper_value is not None else "",
                "paper_citation": table.paper.citation if paper_value is not None else "",
            }
            for m in table.metrics:
                iv = row.stats[m]
                line.update({f"{m}_mean": _num(iv.mean), f"{m}_ci95": _num(iv.half_width),
                             f"{m}_low": _num(iv.low), f"{m}_high": _num(iv.high)})
            writer.writerow(line)
        if table.expert is not None:
            line = {c: "" for c in fieldnames}
            line.update({"source": "expert", "model": "expert", "label": "Expert (reference)", "n_seeds": 1})
            for m in table.metrics:
                try:
                    line[f"{m}_mean"] = _num(float(table.expert[m]))
                except (KeyError, TypeError, ValueError):
                    pass
            writer.writerow(line)
    return path


_EXPERT_PLOTTED = ("catch_rate", "catches_per_round", "score")
CLIP_NOTE = "intervals clipped to each metric's range (catch rate in [0, 1]; counts, sizes, times >= 0)"


def error_bars(rows: Sequence[TableRow], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Means ``[R]`` and matplotlib's asymmetric errors ``[2, R]`` (below, above the mean) of
    each row's 95% interval, clipped to the metric's physical range; NaN where undefined."""
    spec = columns.METRIC[metric]
    means = np.array([r.stats[metric].mean for r in rows], dtype=float)
    bounds = np.array([r.stats[metric].clipped(spec.lower, spec.upper) for r in rows], dtype=float).reshape(-1, 2)
    return means, np.stack([means - bounds[:, 0], bounds[:, 1] - means])


def plot_table(table: Table, path: str | os.PathLike) -> Path:
    """Bar chart with 95% CI error bars, one panel per metric (Agg; no pyplot state).

    The catches-per-round panel shows the paper's published figures as hatched bars beside
    ours, labelled as the paper's, when our runs play the paper's protocol (another env: the
    figures stay in the Markdown only); the expert is a dashed reference line where given.
    A variant table (an ablation) is drawn by ``plot_variants`` instead.
    """
    if table.is_variant_table:
        return plot_variants(table, path)
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = table.rows
    paper_protocol = _plays_paper_protocol(table)  # the paper's bars only beside its protocol
    paper_metric = table.paper.metric if table.paper is not None and paper_protocol else None
    x = np.arange(len(rows))
    ncols, nrows = 3, -(-(len(table.metrics) + 1) // 3)  # one panel per metric, one for the notes
    fig = Figure(figsize=(4.2 * ncols, 3.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, metric in zip(axes, table.metrics):
        width = 0.38 if metric == paper_metric else 0.7
        offset = -width / 2 if metric == paper_metric else 0.0
        means, errs = error_bars(rows, metric)
        has = np.isfinite(means)
        ax.bar(x[has] + offset, means[has], width, color="tab:blue", label="ours (mean ± 95% CI)")
        bounded = has & np.isfinite(errs).all(0)
        if bounded.any():
            ax.errorbar(x[bounded] + offset, means[bounded], yerr=errs[:, bounded], fmt="none", ecolor="black", capsize=4)
        for i, r in enumerate(rows):
            note = "no run" if not has[i] else (f"n={r.stats[metric].n}" if r.stats[metric].n < 2 or r.problems else "")
            if note:
                ax.annotate(note, (x[i] + offset, 0), xytext=(0, 3), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7, rotation=90)
        if metric == paper_metric:
            paper = [(i, r.paper_value) for i, r in enumerate(rows) if r.paper_value is not None]
            if paper:
                bars = ax.bar([i + width / 2 for i, _ in paper], [v for _, v in paper], width, color="white",
                              edgecolor="tab:red", hatch="//", label=f"paper (arXiv 2606.21295, {table.paper.protocol})")
                ax.bar_label(bars, labels=[f"{v:.2f}" for _, v in paper], fontsize=7, color="tab:red")
        if table.expert is not None and metric in _EXPERT_PLOTTED:
            try:
                value = float(table.expert[metric])
            except (KeyError, TypeError, ValueError):
                value = math.nan
            if math.isfinite(value):
                ax.axhline(value, color="tab:green", linestyle="--", linewidth=1, label="expert (reference)")
        ax.set_title(_label(metric))
        ax.set_xticks(x, [r.label for r in rows], rotation=30, ha="right", fontsize=8)
        ax.axhline(0, color="grey", linewidth=0.5)
        if metric in (paper_metric, "catch_rate"):
            ax.legend(fontsize=7, loc="best")
    for ax in axes[len(table.metrics):]:
        ax.axis("off")
    spare = axes[-1] if len(table.metrics) < len(axes) else None
    if spare is not None:
        text = (f"95% Student-t CI over seeds,\n{CLIP_NOTE.replace(' (', chr(10) + '(')}.\nEnv: {', '.join(table.envs) or 'unknown'}.\n"
                f"Runs not counted: {table.n_problems}.")
        if table.paper is not None and paper_protocol:
            text += f"\nPaper figures (hatched): Cai & Zhao,\narXiv 2606.21295, {table.paper.protocol}."
        elif table.paper is not None:
            text += (f"\nThe paper's figures ({table.paper.protocol},\nanother protocol) are not drawn:"
                     "\nsee the Markdown table.")
        spare.text(0.0, 1.0, text, va="top", ha="left", fontsize=9, transform=spare.transAxes)
    fig.suptitle(f"{', '.join(table.envs) or 'Pong'}: behavior-cloned agents, mean and 95% CI over seeds")
    fig.savefig(path, dpi=110)
    return path


def _expert_value(table: Table, metric: str) -> float:
    """The expert's value of ``metric``; NaN when there is no expert or no such value."""
    try:
        return float(table.expert[metric]) if table.expert is not None else math.nan
    except (KeyError, TypeError, ValueError):
        return math.nan


def plot_variants(table: Table, path: str | os.PathLike, metric: str = "catch_rate") -> Path:
    """Horizontal bars of one metric per row, best on top, with 95% CI whiskers (Agg).

    Meant for an ablation's many variants: rows are sorted by the mean (rows without a
    finished run last, marked "no run"); a row with fewer seeds than expected or one seed
    is annotated with its n. The expert, where given, is a dashed reference line. Whiskers
    are the table's Student-t intervals, clipped to the metric's range (`error_bars`).
    """
    from matplotlib.figure import Figure

    if metric not in table.metrics:
        raise TableError(f"Unknown metric '{metric}'; choose one of {', '.join(table.metrics)}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    means = np.array([r.stats[metric].mean for r in table.rows], dtype=float)
    order = sorted(range(len(table.rows)), key=lambda i: (not np.isfinite(means[i]), -np.nan_to_num(means[i], nan=0.0)))
    rows = [table.rows[i] for i in order][::-1]  # barh draws bottom-up: best on top
    means, errs = error_bars(rows, metric)
    y = np.arange(len(rows))
    has = np.isfinite(means)
    fig = Figure(figsize=(8.0, 1.4 + 0.28 * max(len(rows), 1)), layout="constrained")
    ax = fig.subplots()
    ax.barh(y[has], means[has], 0.7, color="tab:blue", label="ours (mean ± 95% CI over seeds)")
    bounded = has & np.isfinite(errs).all(0)
    if bounded.any():
        ax.errorbar(means[bounded], y[bounded], xerr=errs[:, bounded], fmt="none", ecolor="black", capsize=3)
    for i, r in enumerate(rows):
        n = r.stats[metric].n
        note = "no run" if not has[i] else (f"n={n}" if n < 2 or n < len(r.expected_seeds) else "")
        if note:  # right of the bar and its whisker
            end = 0.0 if not has[i] else means[i] + (errs[1, i] if np.isfinite(errs[1, i]) else 0.0)
            ax.annotate(note, (end, y[i]), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    expert = _expert_value(table, metric)
    if math.isfinite(expert):
        ax.axvline(expert, color="tab:green", linestyle="--", linewidth=1, label="expert (reference)")
    ax.set_yticks(y, [r.label for r in rows], fontsize=8)
    ax.set_xlabel(_label(metric))
    ax.axvline(0, color="grey", linewidth=0.5)
    ax.legend(fontsize=7, loc="lower right")
    keys = ", ".join(k for k in table.keys if k != MODEL_KEY) or MODEL_KEY
    ax.set_title(f"{_label(metric)} per variant, mean ± 95% Student-t CI over seeds (best on top)\n{CLIP_NOTE}\n"
                 f"rows: {keys}\nenv: {', '.join(table.envs) or 'unknown'}; runs not counted: {table.n_problems}",
                 fontsize=8)
    fig.savefig(path, dpi=110)
    return path
