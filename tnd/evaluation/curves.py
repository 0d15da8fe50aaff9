"""Learning curves: run folders' periodic validation evaluations -> per-model mean and 95% CI
over seeds -> plateau step -> CSV / Markdown / PNG.

Data flow::

    collect_curves(root)          every run folder under ``root`` -> RunCurve (one seed's curve)
    aggregate_curves(curves)      RunCurves -> ModelCurve per model (mean, interval, n per step)
    plateau_step(steps, mean)     the step after which the mean stops improving
    write_curves_csv / render_curves_markdown / plot_curves

The trainer evaluates the policy every ``train.eval_every`` steps on ``eval.periodic_games``
*validation* games (``eval.validation_seed``, never the test games) and writes the
results into the run folder's ``metrics.jsonl`` as ``eval_<metric>`` (``eval_catch_rate``,
``eval_catches_per_round``, ...), the last training step included when ``eval_every``
divides ``train.steps``.

Intervals: mean ± t_{0.975, n-1}·s/√n over the seeds evaluated at a step (scipy.stats),
NaN for one seed. For rates (values in [0, 1], e.g. the catch rate) the interval is clipped
to [0, 1]: a symmetric t interval can leave the range a rate lives in.

Library code: paths and values in, files out; no Hydra, no JAX.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from tnd.evaluation import table as tables

__all__ = [
    "DEFAULT_METRIC",
    "DEFAULT_TOLERANCE",
    "CurveError",
    "ModelCurve",
    "RunCurve",
    "aggregate_curves",
    "collect_curves",
    "plateau_step",
    "plot_curves",
    "read_curve",
    "render_curves_markdown",
    "write_curves_csv",
]

METRICS_FILE = "metrics.jsonl"
EVAL_PREFIX = "eval_"  # the trainer's prefix of periodic-evaluation columns in metrics.jsonl
DEFAULT_METRIC = "eval_catch_rate"
DEFAULT_TOLERANCE = 0.02  # absolute: a later gain of at most this much is "no improvement"
CONFIDENCE = 0.95
# Metrics that are rates in [0, 1]: their intervals are clipped to this range.
RATE_METRICS: tuple[str, ...] = ("eval_catch_rate",)
RATE_RANGE = (0.0, 1.0)
CSV_COLUMNS: tuple[str, ...] = ("model", "step", "mean", "lo", "hi", "n_seeds")


class CurveError(tables.TableError):
    """Unreadable or absent run folders, or no evaluation rows to draw curves from."""


@dataclasses.dataclass(frozen=True)
class RunCurve:
    """One run's curve: ``values[i]`` is the metric evaluated after ``steps[i]`` training steps."""

    model: str
    seed: int
    status: str  # the run's status (tnd.evaluation.table): "ok", "failed" or "unfinished"
    path: Path
    steps: tuple[int, ...]
    values: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class ModelCurve:
    """One model over seeds. Arrays have shape (n_steps,), one entry per evaluated step.

    ``lo``/``hi`` are the interval's ends (clipped for rates, see ``clipped``), NaN where
    fewer than two seeds were evaluated; ``n`` counts the seeds evaluated at each step.
    """

    model: str
    label: str
    seeds: tuple[int, ...]
    steps: np.ndarray  # int, increasing
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray  # int
    clipped: tuple[float, float] | None = None  # the range the interval was clipped to, if any


# --------------------------------------------------------------------------- reading


def _read_rows(path: Path) -> list[dict]:
    """The JSON objects of a metrics.jsonl; a line cut by a kill is skipped."""
    rows = []
    try:
        text = path.read_text()
    except OSError as exc:
        raise CurveError(f"Cannot read {path}: {exc}.") from exc
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _finite(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def read_curve(record: tables.RunRecord, metric: str = DEFAULT_METRIC) -> RunCurve | None:
    """The curve of ``metric`` in one run folder; None without metrics.jsonl or such rows.

    A step logged twice (a resumed run keeps the rows up to its checkpoint, so this is
    rare) counts once, its last row. Non-finite values are dropped.
    """
    if record.path is None or record.model is None or record.seed is None:
        return None
    path = Path(record.path) / METRICS_FILE
    if not path.is_file():
        return None
    by_step: dict[int, float] = {}
    for row in _read_rows(path):
        value, step = _finite(row.get(metric)), _finite(row.get("step"))
        if value is not None and step is not None:
            by_step[int(step)] = value
    if not by_step:
        return None
    steps = tuple(sorted(by_step))
    return RunCurve(str(record.model), int(record.seed), record.status, Path(record.path), steps,
                    tuple(by_step[s] for s in steps))


def collect_curves(
    root: str | os.PathLike, metric: str = DEFAULT_METRIC, *, statuses: Iterable[str] = ("ok",)
) -> tuple[list[RunCurve], list[tables.RunRecord]]:
    """(curves, skipped): the curves of the run folders under ``root`` whose status is in
    ``statuses`` (finished runs by default), and the run folders not drawn (other status,
    no evaluation rows, or another folder for the same model and seed drawn instead).

    Raises CurveError when ``root`` does not exist.
    """
    try:
        records = tables.collect_runs(root)
    except tables.TableError as exc:
        raise CurveError(str(exc)) from exc
    statuses = set(statuses)
    rank = {"ok": 0, "failed": 1, "unfinished": 2}
    records = sorted(records, key=lambda r: (rank.get(r.status, 3), str(r.path)))
    curves: dict[tuple[str, int], RunCurve] = {}
    skipped = []
    for record in records:
        curve = read_curve(record, metric) if record.status in statuses else None
        if curve is None or (curve.model, curve.seed) in curves:
            skipped.append(record)
        else:
            curves[curve.model, curve.seed] = curve
    return list(curves.values()), skipped


def curves_by_model(curves: Iterable[RunCurve]) -> dict[str, dict[int, dict[int, float]]]:
    """model -> seed -> step -> value, models in the table's order (the paper's, then by name)."""
    grouped: dict[str, dict[int, dict[int, float]]] = {}
    for c in curves:
        grouped.setdefault(c.model, {})[c.seed] = dict(zip(c.steps, c.values))
    order = tables.model_order(grouped)
    return {m: dict(sorted(grouped[m].items())) for m in order}


# --------------------------------------------------------------------------- statistics


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, lo, hi): the Student-t interval over ``values`` (scipy.stats.t); lo/hi NaN for one value."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def aggregate_curves(
    curves: Iterable[RunCurve],
    *,
    confidence: float = CONFIDENCE,
    clip: tuple[float, float] | None = None,
) -> list[ModelCurve]:
    """Per model: mean and Student-t interval over the seeds evaluated at each step.

    Every step any seed of the model was evaluated at is a point; ``n`` says how many
    seeds it has (fewer where a run stopped early). ``clip=(low, high)`` clips the interval
    ends (use RATE_RANGE for rates).
    """
    out = []
    for model, seeds in curves_by_model(curves).items():
        steps = sorted({s for values in seeds.values() for s in values})
        points = [[v[s] for v in seeds.values() if s in v] for s in steps]
        stats = np.array([t_interval(p, confidence) for p in points], dtype=np.float64).reshape(-1, 3)
        lo, hi = stats[:, 1], stats[:, 2]
        if clip is not None:
            lo, hi = np.clip(lo, *clip), np.clip(hi, *clip)  # NaN stays NaN
        out.append(ModelCurve(
            model=model, label=tables.MODEL_LABELS.get(model, model), seeds=tuple(seeds),
            steps=np.asarray(steps, dtype=np.int64), mean=stats[:, 0], lo=lo, hi=hi,
            n=np.asarray([len(p) for p in points], dtype=np.int64), clipped=clip,
        ))
    return out


def plateau_step(steps: Sequence[int], mean: Sequence[float], tolerance: float = DEFAULT_TOLERANCE) -> int:
    """The first evaluated step from which the mean never improves by more than ``tolerance``.

    Rule: the plateau is the first ``steps[i]`` with ``max(mean[i:]) - mean[i] <= tolerance``
    (absolute units of the metric, e.g. 0.02 catch rate): no later evaluation beats the
    value there by more than the tolerance. The last step always qualifies, so a curve
    still rising at the end has its plateau at its last step ("not reached"). NaN means
    (no seed evaluated) are ignored. Shapes: ``steps`` and ``mean`` are (n_steps,).
    """
    steps, mean = np.asarray(steps), np.asarray(mean, dtype=np.float64)
    if steps.shape != mean.shape or steps.ndim != 1:
        raise CurveError(f"steps and mean must be 1-D of one length, got shapes {steps.shape} and {mean.shape}.")
    keep = np.isfinite(mean)
    steps, mean = steps[keep], mean[keep]
    if steps.size == 0:
        raise CurveError("No finite mean value: no plateau.")
    best_later = np.maximum.accumulate(mean[::-1])[::-1]  # best_later[i] = max(mean[i:])
    return int(steps[np.argmax(best_later - mean <= tolerance)])


# --------------------------------------------------------------------------- outputs


def _num(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else ""


def write_curves_csv(curves: Sequence[ModelCurve], path: str | os.PathLike) -> Path:
    """One line per (model, step): model, step, mean, lo, hi, n_seeds; lo/hi empty for one seed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for c in curves:
            for i, step in enumerate(c.steps):
                writer.writerow({"model": c.model, "step": int(step), "mean": _num(c.mean[i]), "lo": _num(c.lo[i]),
                                 "hi": _num(c.hi[i]), "n_seeds": int(c.n[i])})
    return path


def _metric_label(metric: str) -> str:
    name = metric[len(EVAL_PREFIX):] if metric.startswith(EVAL_PREFIX) else metric
    return f"validation {tables.METRIC_LABELS.get(name, name).lower()}"


def _fmt_point(c: ModelCurve, i: int) -> str:
    return f"{c.mean[i]:.3f} [{c.lo[i]:.3f}, {c.hi[i]:.3f}]" if math.isfinite(c.lo[i]) else f"{c.mean[i]:.3f} [n/a]"


def render_curves_markdown(
    curves: Sequence[ModelCurve],
    *,
    metric: str = DEFAULT_METRIC,
    tolerance: float = DEFAULT_TOLERANCE,
    skipped: Sequence[tables.RunRecord] = (),
) -> str:
    """Per model: seeds, plateau step, best mean (and its step), the value at the last step; then the rules."""
    what = _metric_label(metric)
    lines = [
        f"| Model | Seeds | Plateau step | Best mean {what} (step) | Last step | Mean {what} at last step |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in curves:
        plateau = plateau_step(c.steps, c.mean, tolerance)
        best = int(np.nanargmax(c.mean))
        last = len(c.steps) - 1
        plateau_text = f"{plateau:,}" + (" (not reached)" if plateau == int(c.steps[last]) and last > 0 else "")
        lines.append(f"| {c.label} | {len(c.seeds)} | {plateau_text} | {_fmt_point(c, best)} ({int(c.steps[best]):,}) "
                     f"| {int(c.steps[last]):,} | {_fmt_point(c, last)} |")
    notes = [
        "",
        f"Curves: the {what} (`{metric}` in each run's metrics.jsonl) of the periodic evaluation on the "
        "validation games (eval.validation_seed, never the test games), mean and [95% Student-t interval] over "
        "the seeds evaluated at a step (n/a: one seed).",
        f"Plateau step: the first evaluated step from which the mean never improves by more than {tolerance:g} "
        "(absolute) at any later step, i.e. max(later means) − mean there ≤ tolerance; \"not reached\": the "
        "curve still rose by more than that up to its last evaluation.",
    ]
    if any(c.clipped is not None for c in curves):
        low, high = next(c.clipped for c in curves if c.clipped is not None)
        notes.append(f"Intervals of this rate are clipped to [{low:g}, {high:g}].")
    if skipped:
        notes += ["", f"Run folders not drawn ({len(skipped)}):", ""]
        notes += [f"- {tables.MODEL_LABELS.get(r.model, r.model)} seed {r.seed} ({r.status}) — `{r.path}`" for r in skipped]
    return "\n".join(lines + notes) + "\n"


def write_curves_markdown(curves: Sequence[ModelCurve], path: str | os.PathLike, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_curves_markdown(curves, **kwargs))
    return path


def plot_curves(
    curves: Sequence[ModelCurve],
    path: str | os.PathLike,
    *,
    metric: str = DEFAULT_METRIC,
    tolerance: float = DEFAULT_TOLERANCE,
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Every model's mean curve with its interval band, and a dotted vertical line at its
    plateau step, in one figure (Agg; no pyplot state)."""
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8.0, 5.0), layout="constrained")
    ax = fig.subplots()
    cycle = [f"C{i}" for i in range(10)]
    for i, c in enumerate(curves):
        color = (colors or {}).get(c.model, cycle[i % len(cycle)])
        ax.plot(c.steps, c.mean, marker="o", markersize=3, color=color, label=f"{c.label} (n={len(c.seeds)})")
        band = np.isfinite(c.lo) & np.isfinite(c.hi)
        if band.any():
            ax.fill_between(c.steps, np.where(band, c.lo, c.mean), np.where(band, c.hi, c.mean), color=color,
                            alpha=0.15, linewidth=0)
        ax.axvline(plateau_step(c.steps, c.mean, tolerance), color=color, linestyle=":", linewidth=1.2)
    what = _metric_label(metric)
    ax.set_xlabel("training step")
    ax.set_ylabel(what)
    if metric in RATE_METRICS:
        low, high = RATE_RANGE
        ax.set_ylim(low - 0.02 * (high - low), high + 0.02 * (high - low))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    clip = " (clipped to [0, 1])" if any(c.clipped for c in curves) else ""
    ax.set_title(f"Learning curves: {what}, mean and 95% CI over seeds{clip}\n"
                 f"dotted: each model's plateau step (later gains ≤ {tolerance:g})", fontsize=9)
    fig.savefig(path, dpi=110)
    return path
