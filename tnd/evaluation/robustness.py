"""Trained runs under perturbations: which columns exist, and the tables they make.

A `Perturbation` is a named change of the env's options, absolute (``set``) or relative to
the run's own value (``scale``): ``noise σ=0.03`` sets ``obs_noise: 0.03``, ``ball ×1.25``
scales ``ball_speed`` by 1.25. `load_perturbations` reads them (with the memory curve's
occlusion lengths and the smoothness settings) from ``conf/table/robustness.yaml``.

`robustness_table` aggregates per-run measurements ``{column: metrics}`` into one row per
model (or per variant, in a sweep of several per model): per column the mean and 95%
Student-t interval over seeds (`student_t_interval`) of the catch rate and catches per
round, the unperturbed column first, plus the smoothness columns (relative hidden-state
step, largest finite-time Lyapunov exponent). The memory curve is the same table with one
column per occlusion length. Library code: plain values in, Markdown / CSV / PNG out.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tnd.evaluation.table.aggregation import model_order
from tnd.evaluation.table.columns import MODEL_LABELS
from tnd.evaluation.table.statistics import Interval, student_t_interval

UNPERTURBED = "none"
CELL_METRICS = ("catch_rate", "catches_per_round")
SMOOTHNESS_METRICS = ("relative_step", "lyapunov")
LABELS = {
    "catch_rate": "catch rate", "catches_per_round": "catches / round",
    "relative_step": "‖h_t − h_t−1‖ / ‖h_t‖", "lyapunov": "largest FTLE (nats/step)",
}


class RobustnessError(ValueError):
    """An unknown perturbation, an out-of-range amount, or nothing to aggregate."""


@dataclasses.dataclass(frozen=True)
class Perturbation:
    """One column: env options set to a value (``set``) or multiplied by a factor (``scale``)."""

    name: str
    label: str
    set: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    scale: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def options(self, config: Any) -> dict[str, Any]:
        """The env options this column changes, given the run's env ``config`` (a dataclass)."""
        changes = dict(self.set)
        for key, factor in self.scale.items():
            if not hasattr(config, key):
                raise RobustnessError(f"Perturbation '{self.name}' scales '{key}', which "
                                      f"{type(config).__name__} does not have.")
            changes[key] = type(getattr(config, key))(getattr(config, key) * float(factor))
        return changes


@dataclasses.dataclass(frozen=True)
class RobustnessSettings:
    """``conf/table/robustness.yaml``: the columns, the memory curve and the smoothness measure."""

    perturbations: tuple[Perturbation, ...]
    occlusion_steps: tuple[int, ...]
    occlusion_rate: float
    smoothness_games: int
    smoothness_steps: int
    lyapunov_burn_in: int

    def select(self, names: Sequence[str] | None) -> tuple[Perturbation, ...]:
        """The named columns (all when ``names`` is None), the unperturbed one always first."""
        known = {p.name: p for p in self.perturbations}
        if names is None:
            chosen = list(known)
        else:
            unknown = [n for n in names if n not in known]
            if unknown:
                close = difflib.get_close_matches(unknown[0], list(known), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise RobustnessError(f"Unknown perturbation '{unknown[0]}'{hint}; known: {', '.join(known)}.")
            chosen = [n for n in dict.fromkeys([UNPERTURBED, *names])]
        return tuple(known[n] for n in chosen)

    def memory_columns(self) -> tuple[Perturbation, ...]:
        """One column per occlusion length k (k = 0: the ball always seen)."""
        return tuple(
            Perturbation(UNPERTURBED, "k = 0") if k == 0 else
            Perturbation(f"occlusion_{k}", f"k = {k}", set={"occlusion_steps": k, "occlusion_rate": self.occlusion_rate})
            for k in self.occlusion_steps
        )


def load_perturbations(path: str | os.PathLike) -> RobustnessSettings:
    """Reads ``path`` (see ``conf/table/robustness.yaml``); malformed entries are one error."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RobustnessError(f"Cannot read {path}: {exc}") from None
    columns = []
    for name, entry in (data.get("perturbations") or {}).items():
        entry = dict(entry or {})
        unknown = set(entry) - {"label", "set", "scale"}
        if unknown:
            raise RobustnessError(f"{path}: perturbation '{name}' has unknown field(s) {sorted(unknown)}; "
                                  "use label, set, scale.")
        columns.append(Perturbation(str(name), str(entry.get("label", name)), dict(entry.get("set") or {}),
                                    {k: float(v) for k, v in (entry.get("scale") or {}).items()}))
    if not columns or columns[0].name != UNPERTURBED or columns[0].set or columns[0].scale:
        raise RobustnessError(f"{path}: the first perturbation must be '{UNPERTURBED}: {{}}' (the unperturbed column).")
    memory, smooth = dict(data.get("memory") or {}), dict(data.get("smoothness") or {})
    steps = tuple(int(k) for k in memory.get("occlusion_steps", (0, 1, 2, 4, 8, 16)))
    if not steps or any(k < 0 for k in steps):
        raise RobustnessError(f"{path}: memory.occlusion_steps must be non-negative step counts, got {list(steps)}.")
    settings = RobustnessSettings(
        tuple(columns), steps, float(memory.get("occlusion_rate", 0.0625)), int(smooth.get("games", 8)),
        int(smooth.get("steps", 1000)), int(smooth.get("lyapunov_burn_in", 100)),
    )
    if min(settings.smoothness_games, settings.smoothness_steps) < 1 or settings.lyapunov_burn_in < 0:
        raise RobustnessError(f"{path}: smoothness.games and .steps must be >= 1 and lyapunov_burn_in >= 0.")
    return settings


# --------------------------------------------------------------------------- aggregation
@dataclasses.dataclass(frozen=True)
class RunMeasurement:
    """One trained run's measurements: ``columns[name]`` = the metrics of its games there.
    ``row``: the table row it belongs to (a variant's label in a sweep of several variants
    per model, e.g. an ablation); None: its model's row."""

    model: str
    seed: int
    path: str
    columns: Mapping[str, Mapping[str, float]]
    smoothness: Mapping[str, float] = dataclasses.field(default_factory=dict)
    row: str | None = None

    @property
    def label(self) -> str:
        return self.row or MODEL_LABELS.get(self.model, self.model)


@dataclasses.dataclass(frozen=True)
class RobustnessRow:
    model: str
    label: str  # the model's name, or its variant's label
    seeds: tuple[int, ...]
    cells: Mapping[tuple[str, str], Interval]  # (column, metric) -> interval over seeds
    smoothness: Mapping[str, Interval]


@dataclasses.dataclass(frozen=True)
class RobustnessTable:
    columns: tuple[Perturbation, ...]
    rows: tuple[RobustnessRow, ...]
    caption: str


def robustness_table(measurements: Sequence[RunMeasurement], columns: Sequence[Perturbation], *,
                     caption: str) -> RobustnessTable:
    """One row per model (the table's model order), or per variant (`RunMeasurement.row`, in
    the order first given, within the model order): intervals over its seeds per cell."""
    if not measurements:
        raise RobustnessError("No finished runs to measure: run the table first (tnd-table).")
    rows = []
    rank = {model: i for i, model in enumerate(model_order({m.model for m in measurements}))}
    labels = sorted(dict.fromkeys((m.label, m.model) for m in measurements), key=lambda lm: rank[lm[1]])
    for label, model in labels:
        runs = sorted((m for m in measurements if m.label == label), key=lambda m: m.seed)
        cells = {(c.name, metric): student_t_interval(_number(r.columns.get(c.name, {}).get(metric)) for r in runs)
                 for c in columns for metric in CELL_METRICS}
        smooth = {metric: student_t_interval(_number(r.smoothness.get(metric)) for r in runs)
                  for metric in SMOOTHNESS_METRICS if any(metric in r.smoothness for r in runs)}
        rows.append(RobustnessRow(model, label, tuple(r.seed for r in runs), cells, smooth))
    return RobustnessTable(tuple(columns), tuple(rows), caption)


def _number(value: Any) -> float:
    """A stored measurement as a float: absent, or not finite when it was stored (JSON null), is NaN."""
    return math.nan if value is None else float(value)


def _cell(interval: Interval, fmt: str) -> str:
    if interval.n == 0:
        return "–"
    if not math.isfinite(interval.half_width):
        return fmt.format(interval.mean)
    return f"{fmt.format(interval.mean)} ± {fmt.replace('+', '').format(interval.half_width)}"


SMOOTHNESS_NOTE = (
    "h_t is every floating-point number the model carries from step to step, raveled (an LSTM's c and h, a TND "
    "model's neuron states). The Transformer carries the keys and values of its last W − 1 steps: a shift register, "
    "whose step and exponent measure the window sliding, not dynamics; compare it with care."
)
FORMATS = {"catch_rate": "{:.3f}", "catches_per_round": "{:.1f}", "relative_step": "{:.3f}", "lyapunov": "{:+.3f}"}


def render_markdown(table: RobustnessTable) -> str:
    """Two Markdown tables (catch rate; catches per round) and the smoothness columns."""
    lines = [table.caption, ""]
    for metric in CELL_METRICS:
        lines += [f"**{LABELS[metric].capitalize()}** (mean ± 95% CI over seeds)", "",
                  "| Model | Seeds | " + " | ".join(c.label for c in table.columns) + " |",
                  "|---|---:|" + "---:|" * len(table.columns)]
        for row in table.rows:
            cells = [_cell(row.cells[(c.name, metric)], FORMATS[metric]) for c in table.columns]
            lines.append(f"| {row.label} | {len(row.seeds)} | " + " | ".join(cells) + " |")
        lines.append("")
    if any(row.smoothness for row in table.rows):
        lines += ["**Smoothness** of the hidden state on unperturbed test games (mean ± 95% CI over seeds)", "",
                  "| Model | " + " | ".join(LABELS[m] for m in SMOOTHNESS_METRICS) + " |",
                  "|---|" + "---:|" * len(SMOOTHNESS_METRICS)]
        for row in table.rows:
            cells = [_cell(row.smoothness.get(m, Interval(math.nan, math.nan, 0)), FORMATS[m]) for m in SMOOTHNESS_METRICS]
            lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
        lines += ["", SMOOTHNESS_NOTE + " “–”: not finite (an exponent of −∞: every perturbation is forgotten).", ""]
    return "\n".join(lines)


def write_markdown(table: RobustnessTable, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(table))
    return path


def write_csv(table: RobustnessTable, path: str | os.PathLike) -> Path:
    """Long form: one line per (row, column, metric) with mean, half-width and n; ``row`` is the
    model's name or its variant's label."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "row", "column", "label", "metric", "mean", "ci95_half_width", "n_seeds"])
        for row in table.rows:
            for c in table.columns:
                for metric in CELL_METRICS:
                    i = row.cells[(c.name, metric)]
                    writer.writerow([row.model, row.label, c.name, c.label, metric, i.mean, i.half_width, i.n])
            for metric, i in row.smoothness.items():
                writer.writerow([row.model, row.label, "smoothness", LABELS[metric], metric, i.mean, i.half_width, i.n])
    return path


def plot_columns(table: RobustnessTable, path: str | os.PathLike, *, metric: str = "catch_rate",
                 xlabel: str | None = None, numeric_x: Sequence[float] | None = None) -> Path:
    """Per model, ``metric`` across the columns with its 95% interval (clipped to [0, 1] for the
    catch rate): grouped bars, or lines against ``numeric_x`` (the memory curve)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 1.1 * len(table.columns) + 2.0), 4.0), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(table.rows))
    for i, row in enumerate(table.rows):
        cells = [row.cells[(c.name, metric)] for c in table.columns]
        mean = np.array([c.mean for c in cells])
        half = np.nan_to_num(np.array([c.half_width for c in cells]))
        low, high = mean - half, mean + half
        if metric == "catch_rate":
            low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
        errors = np.stack([mean - low, high - mean])
        label = row.label
        if numeric_x is None:
            x = np.arange(len(cells)) + (i - (len(table.rows) - 1) / 2) * width
            ax.bar(x, mean, width, yerr=errors, capsize=2, label=label)
        else:
            ax.errorbar(np.asarray(numeric_x, float), mean, yerr=errors, marker="o", capsize=3, label=label)
    if numeric_x is None:
        ax.set_xticks(np.arange(len(table.columns)), [c.label for c in table.columns], rotation=20, ha="right")
    else:
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks(list(numeric_x), [str(int(v)) for v in numeric_x])
    ax.set_xlabel(xlabel or "perturbation")
    ax.set_ylabel(LABELS[metric] + (" (95% CI clipped to [0, 1])" if metric == "catch_rate" else ""))
    ax.set_title(table.caption.split("\n")[0].lstrip("# ")[:90], fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=len(table.rows), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
