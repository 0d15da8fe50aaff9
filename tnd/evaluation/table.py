"""The Pong table: run folders -> one row per model or variant (mean and 95% CI over seeds) -> MD/CSV/PNG.

Data flow::

    collect_runs(root)            every Hydra job folder under ``root`` -> RunRecord
    aggregate(records, ...)       RunRecords -> Table (one TableRow per model, or per variant)
    write_markdown / write_csv / plot_table

A *variant* is one combination of the values of the sweep's row keys (``keys``; the swept
keys but the seed). The Pong table's only row key is ``model`` (rows = models); an
ablation sweeps more keys (e.g. ``graph``, ``model.options.dynamics``), and every
combination is a row, labelled from its values (``layered_ncp · K=2 · leaky · scalar``)
and aggregated over seeds exactly like a model row. A run's value of a key is read from
the overrides Hydra recorded in ``.hydra/overrides.yaml`` (the model also from the
summary or the config).

A *run folder* is a Hydra job folder: it holds ``.hydra/`` (``config.yaml``,
``overrides.yaml``, ``hydra.yaml``, written by Hydra) and, written by the trainer, either
``summary.json`` (success: model, seed, env and the metrics below) or ``error.json``
(``{"error": message, ...}``). A folder with ``.hydra/`` but neither file is *unfinished*
(killed or still running). A (model, seed) pair the sweep expects but no folder holds is
*missing*. Failed, unfinished and missing runs are listed and counted in every output,
never silently dropped.

Intervals are Student-t 95% confidence intervals over seeds: mean ± t_{0.975, n-1}·s/√n
with s the sample standard deviation; n = 1 leaves the interval undefined ("n/a").
The t quantile is ``scipy.stats.t.ppf``. The plots clip each interval to its metric's
physical range (`Metric.lower`/`upper`: a catch rate stays in [0, 1], counts and times
stay >= 0) and say so; the Markdown and CSV give the unclipped statistic.

Library code: plain paths and values in, files out; no Hydra objects.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from tnd.run_folder import ERROR_FILE, EXPERT_FILE, SUMMARY_FILE

__all__ = [
    "METRIC",
    "METRICS",
    "Metric",
    "MODEL_LABELS",
    "PAPER",
    "Interval",
    "PublishedFigures",
    "RunRecord",
    "Table",
    "TableError",
    "TableRow",
    "aggregate",
    "collect_runs",
    "infer_row_keys",
    "load_expert_summary",
    "plot_table",
    "plot_variants",
    "render_markdown",
    "run_value",
    "student_t_interval",
    "student_t_quantile",
    "variant_labels",
    "write_csv",
    "write_markdown",
]

@dataclasses.dataclass(frozen=True)
class Metric:
    """One column of the table, declared once: how it is labelled, formatted and bounded.

    ``lower``/``upper``: the metric's physical range (None: unbounded), to which plotted
    intervals are clipped; ``higher_is_better``: the direction (None: neither, e.g. size).
    """

    name: str  # the key in summary.json
    label: str
    fmt: str
    lower: float | None = None
    upper: float | None = None
    higher_is_better: bool | None = True

    def format(self, value: float) -> str:
        return self.fmt.format(value)


# The metrics of the table, in column order. Adding one is one line here.
METRIC: Mapping[str, Metric] = types.MappingProxyType({m.name: m for m in (
    Metric("catch_rate", "Catch rate", "{:.3f}", lower=0.0, upper=1.0),
    Metric("catches_per_round", "Catches / round", "{:.2f}", lower=0.0),
    Metric("score", "Score (won − lost)", "{:.2f}"),
    Metric("num_params", "Parameters", "{:,.0f}", lower=0.0, higher_is_better=None),
    Metric("train_seconds", "Train time (s)", "{:.1f}", lower=0.0, higher_is_better=False),
)})
METRICS: tuple[str, ...] = tuple(METRIC)
METRIC_LABELS: Mapping[str, str] = types.MappingProxyType({name: m.label for name, m in METRIC.items()})

# Registry names -> the names the paper uses.
MODEL_LABELS: Mapping[str, str] = types.MappingProxyType({
    "tnd": "TND",
    "rnn": "Vanilla RNN",
    "sparse_rnn": "Sparse RNN",
    "lstm": "LSTM",
    "cfc": "CfC",
    "transformer": "Transformer",
})

# Short names of swept keys in variant labels (``K=2``). A key not listed here is shown by
# its value alone when all its values are names, else as ``<last part of the key>=<value>``.
KEY_LABELS: Mapping[str, str] = types.MappingProxyType({
    "model.options.inner_rounds": "K",
    "param_budget": "budget",
})
VARIANT_LABEL_SEPARATOR = " · "
MODEL_KEY, SEED_KEY = "model", "seed"


class TableError(ValueError):
    """Unreadable run folders or bad arguments to the table functions."""


@dataclasses.dataclass(frozen=True)
class PublishedFigures:
    """Figures a paper published, kept verbatim with their citation and protocol."""

    citation: str
    protocol: str
    metric: str  # which of METRICS the values are
    values: Mapping[str, float]  # registry model name -> published value
    models: tuple[str, ...]  # every model the paper compares (published value or not)


# The only figures the paper publishes (its abstract/summary); the other baselines it lists
# have no published number.
PAPER = PublishedFigures(
    citation=(
        "B. Cai, Y. Zhao, \"Topological Neural Dynamics: A Neuron-wise Framework for "
        "Sequence Modeling\", arXiv 2606.21295 (2026)"
    ),
    protocol="single-player Pong",
    metric="catches_per_round",
    values=types.MappingProxyType({"tnd": 17.47, "cfc": 6.14}),
    models=("tnd", "rnn", "sparse_rnn", "lstm", "cfc", "transformer"),
)


# --------------------------------------------------------------------------- statistics


def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (e.g. p = 0.975, df = 2 -> 4.303), ``scipy.stats.t.ppf``."""
    if not 0.0 < p < 1.0:
        raise TableError(f"Quantile probability must lie strictly between 0 and 1, got {p}.")
    if df <= 0:
        raise TableError(f"Student-t degrees of freedom must be > 0, got {df}.")
    return float(stats.t.ppf(p, df))


@dataclasses.dataclass(frozen=True)
class Interval:
    """Mean and 95% CI half-width over ``n`` values; ``half_width`` is NaN when n < 2."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def clipped(self, lower: float | None = None, upper: float | None = None) -> tuple[float, float]:
        """(low, high) limited to a metric's physical range [lower, upper] (None: unbounded)."""
        low, high = self.low, self.high
        return (low if lower is None else max(low, lower), high if upper is None else min(high, upper))


def student_t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """mean ± t_{(1+c)/2, n-1} · s/√n over the finite ``values`` (NaNs are not counted).

    n = 0 -> mean and half-width NaN; n = 1 -> half-width NaN (undefined, shown "n/a").
    """
    x = np.asarray([float(v) for v in values], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, 1)
    return Interval(mean, student_t_quantile(0.5 + confidence / 2.0, n - 1) * float(stats.sem(x)), n)


# --------------------------------------------------------------------------- run folders


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run (Hydra job folder) or one expected run that never started.

    status: "ok" (summary.json), "failed" (error.json), "unfinished" (.hydra/ only) or
    "missing" (expected, no folder; path is None). ``metrics`` is the summary (ok runs).
    """

    model: str | None
    seed: int | None
    status: str
    path: Path | None
    metrics: Mapping[str, object] = dataclasses.field(default_factory=dict)
    error: str | None = None
    overrides: tuple[str, ...] = ()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TableError(f"Cannot read {path}: {exc}. Delete the file (the run is then treated as unfinished) or fix it.") from exc
    if not isinstance(data, dict):
        raise TableError(f"{path} must hold a JSON object, found {type(data).__name__}.")
    return data


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _as_seed(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _identity_from_hydra(run_dir: Path) -> tuple[str | None, int | None, tuple[str, ...]]:
    """(model, seed, overrides) of a job folder from what Hydra wrote into ``.hydra/``."""
    hydra_dir = run_dir / ".hydra"
    model = seed = None
    overrides = _read_yaml(hydra_dir / "overrides.yaml") or []
    overrides = tuple(str(o) for o in overrides) if isinstance(overrides, list) else ()
    for line in overrides:
        key, sep, value = line.partition("=")
        key = key.lstrip("+~").split("@")[0]
        if sep and key == "model":
            model = value
        elif sep and key == "seed":
            seed = _as_seed(value)
    if model is None:
        hydra_cfg = _read_yaml(hydra_dir / "hydra.yaml") or {}
        choices = (hydra_cfg.get("hydra") or {}).get("runtime", {}).get("choices", {}) if isinstance(hydra_cfg, dict) else {}
        if isinstance(choices, dict) and isinstance(choices.get("model"), str):
            model = choices["model"]
    config = None
    if model is None or seed is None:
        config = _read_yaml(hydra_dir / "config.yaml")
    if isinstance(config, dict):
        if model is None:
            node = config.get("model")
            if isinstance(node, dict):
                node = node.get("name")
            model = node if isinstance(node, str) else None
        if seed is None:
            seed = _as_seed(config.get("seed"))
    return model, seed, overrides


def read_run(run_dir: str | os.PathLike) -> RunRecord:
    """The RunRecord of one Hydra job folder (summary.json wins over a stale error.json)."""
    run_dir = Path(run_dir)
    model, seed, overrides = _identity_from_hydra(run_dir)
    summary, error = run_dir / SUMMARY_FILE, run_dir / ERROR_FILE
    if summary.is_file():
        data = _read_json(summary)
        model = data.get("model", model)
        seed = _as_seed(data.get("seed", seed))
        return RunRecord(model, seed, "ok", run_dir, types.MappingProxyType(data), None, overrides)
    if error.is_file():
        data = _read_json(error)
        model = data.get("model", model)
        seed = _as_seed(data.get("seed", seed))
        message = str(data.get("error", "error.json without an 'error' message"))
        return RunRecord(model, seed, "failed", run_dir, types.MappingProxyType({}), message, overrides)
    return RunRecord(model, seed, "unfinished", run_dir, types.MappingProxyType({}), None, overrides)


def collect_runs(root: str | os.PathLike) -> list[RunRecord]:
    """Every Hydra job folder under ``root`` (itself included), sorted by path.

    A job folder is a directory with a ``.hydra/`` sub-folder; the walk does not descend
    into job folders (checkpoints, event files). Raises TableError if ``root`` is absent.
    """
    root = Path(root)
    if not root.is_dir():
        raise TableError(f"Run folder root '{root}' does not exist. Run the sweep first or pass the folder that holds the runs.")
    records = []
    for current, dirs, _files in os.walk(root):
        if ".hydra" in dirs:
            records.append(read_run(current))
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(records, key=lambda r: str(r.path))


def _override_key(line: str) -> str:
    """``+graph.options.k@pkg=3`` -> ``graph.options.k``: the key an override line sets."""
    return line.partition("=")[0].lstrip("+~").split("@")[0]


def run_value(record: RunRecord, key: str) -> str | None:
    """The value of swept ``key`` in one run, as Hydra's override text; None if unknown.

    ``model`` and ``seed`` come from the record (summary, overrides or config); any other
    key from the overrides Hydra recorded for the job (``.hydra/overrides.yaml``).
    """
    if key == MODEL_KEY:
        return record.model
    if key == SEED_KEY:
        return None if record.seed is None else str(record.seed)
    for line in record.overrides:
        if "=" in line and _override_key(line) == key:
            return line.partition("=")[2]
    return None


def infer_row_keys(records: Iterable[RunRecord], ignore: Iterable[str] = ()) -> tuple[str, ...]:
    """Row keys of run folders without a sweep plan: ``model`` and every override key whose
    value differs between the folders (first-seen order; the seed and ``ignore`` never).

    Folders of a models × seeds sweep give ``("model",)``; an ablation's folders give
    ``("model", "graph", ...)``.
    """
    skip = {MODEL_KEY, SEED_KEY, *ignore}
    values: dict[str, set[str]] = {}
    for record in records:
        for line in record.overrides:
            key = _override_key(line)
            if "=" in line and key not in skip:
                values.setdefault(key, set()).add(line.partition("=")[2])
    return (MODEL_KEY, *(k for k, v in values.items() if len(v) > 1))


def load_expert_summary(path: str | os.PathLike) -> dict | None:
    """The expert's metrics (same keys as summary.json) from ``path``; None if absent.

    ``path`` may be the JSON file itself or a folder holding ``expert_summary.json``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / EXPERT_FILE
    if not path.is_file():
        return None
    return _read_json(path)


# --------------------------------------------------------------------------- aggregation


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One model or variant: intervals over its ok seeds, and every run that did not count."""

    model: str
    label: str
    stats: Mapping[str, Interval]
    seeds: tuple[int, ...]  # seeds of ok runs
    expected_seeds: tuple[int, ...]
    failed: tuple[RunRecord, ...]
    unfinished: tuple[RunRecord, ...]
    missing: tuple[RunRecord, ...]  # expected (variant, seed) without a folder
    variant: tuple[tuple[str, str], ...] = ()  # (row key, value) pairs; (("model", model),) in the Pong table

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def problems(self) -> tuple[RunRecord, ...]:
        return self.failed + self.unfinished + self.missing

    @property
    def paper_value(self) -> float | None:
        return PAPER.values.get(self.model)


@dataclasses.dataclass(frozen=True)
class Table:
    rows: tuple[TableRow, ...]
    expert: Mapping[str, object] | None = None
    envs: tuple[str, ...] = ()  # envs named by the ok runs' summaries
    unidentified: tuple[RunRecord, ...] = ()  # run folders whose model, seed or another row key is unknown
    duplicates: tuple[RunRecord, ...] = ()  # extra folders for an already counted (variant, seed)
    paper: PublishedFigures | None = PAPER  # None: no paper column (an ablation of one model)
    metrics: tuple[str, ...] = METRICS
    keys: tuple[str, ...] = (MODEL_KEY,)  # row keys: ("model",) = one row per model

    @property
    def n_problems(self) -> int:
        return sum(len(r.problems) for r in self.rows) + len(self.unidentified)

    @property
    def is_variant_table(self) -> bool:
        """True when rows are variants of more keys than the model (an ablation)."""
        return self.keys != (MODEL_KEY,)


_STATUS_RANK = {"ok": 0, "failed": 1, "unfinished": 2}


def _metric(record: RunRecord, name: str) -> float:
    value = record.metrics.get(name)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _model_order(models: Iterable[str]) -> list[str]:
    known = {m: i for i, m in enumerate(PAPER.models)}
    return sorted(set(models), key=lambda m: (known.get(m, len(known)), m))


def _variant_order(variants: Iterable[tuple[str, ...]], keys: Sequence[str]) -> list[tuple[str, ...]]:
    """Variants sorted by model (the paper's order), then by their other values."""
    variants = set(variants)
    m = keys.index(MODEL_KEY)
    rank = {model: i for i, model in enumerate(_model_order(v[m] for v in variants))}
    return sorted(variants, key=lambda v: (rank[v[m]], v))


def _is_name(value: str) -> bool:
    """True for a value shown alone in a label (a name, not a number, bool or null)."""
    try:
        float(value)
        return False
    except ValueError:
        return value.lower() not in ("true", "false", "null", "none", "")


def variant_labels(variants: Sequence[tuple[str, ...]], keys: Sequence[str]) -> list[str]:
    """A short readable label per variant (tuples of values in ``keys`` order).

    Only keys whose value differs between the variants are named, joined by " · ": the
    model by its paper name (MODEL_LABELS), a key of KEY_LABELS as ``K=2``, any other key
    by its value alone when all its values are names (``leaky``) or else as
    ``<last part of the key>=<value>``. Nothing differs (one row): the model's name.
    """
    parts: list[list[str]] = [[] for _ in variants]
    for i, key in enumerate(keys):
        values = [v[i] for v in variants]
        if len(set(values)) < 2:
            continue
        if key == MODEL_KEY:
            shown = [MODEL_LABELS.get(v, v) for v in values]
        elif key not in KEY_LABELS and all(_is_name(v) for v in values):
            shown = values
        else:
            short = KEY_LABELS.get(key, key.rsplit(".", 1)[-1])
            shown = [f"{short}={v}" for v in values]
        for part, text in zip(parts, shown):
            part.append(text)
    m = list(keys).index(MODEL_KEY)
    return [VARIANT_LABEL_SEPARATOR.join(p) if p else MODEL_LABELS.get(v[m], v[m]) for p, v in zip(parts, variants)]


def aggregate(
    records: Sequence[RunRecord],
    *,
    expected_models: Sequence[str] | None = None,
    expected_seeds: Sequence[int] | None = None,
    expert: Mapping[str, object] | None = None,
    keys: Sequence[str] = (MODEL_KEY,),
    expected_variants: Sequence[Sequence[str]] | None = None,
    paper: PublishedFigures | None = PAPER,
) -> Table:
    """One row per variant with the mean and 95% Student-t CI over seeds of every metric.

    keys: the row keys (the swept keys but the seed; must include "model"). The default
    ``("model",)`` gives one row per model, the Pong table. A variant is a tuple of
    values in ``keys`` order (see ``run_value``); runs with a key's value unknown are
    listed in ``Table.unidentified``.
    expected_variants / expected_seeds: the sweep's variants × seeds. Expected pairs with
    no folder become "missing" records; variants with runs but not expected still get a
    row. expected_models: with ``keys=("model",)`` the expected variants; with more keys,
    only the expected variants (or, without them, the seen variants) of these models are
    expected. Defaults: the variants seen, and the union of the seeds seen over all
    variants (a seed one variant ran and another did not is reported missing for the other).
    Several folders for one (variant, seed): the best (ok > failed > unfinished, then the
    newest) counts, the rest are listed in ``Table.duplicates``.
    paper: the published figures shown beside ours; None for none (an ablation).
    """
    keys = tuple(keys)
    if MODEL_KEY not in keys or SEED_KEY in keys or len(set(keys)) != len(keys):
        raise TableError(f"Row keys must name 'model', not 'seed', each once; got {list(keys)}.")
    if expected_variants is None and expected_models is not None and keys == (MODEL_KEY,):
        expected_variants = [(m,) for m in expected_models]
    if expected_variants is not None:
        expected_variants = [tuple(str(x) for x in v) for v in expected_variants]
        bad = [v for v in expected_variants if len(v) != len(keys)]
        if bad:
            raise TableError(f"Expected variant {list(bad[0])} does not give one value per row key {list(keys)}.")
        if expected_models is not None:
            expected_variants = [v for v in expected_variants if v[keys.index(MODEL_KEY)] in expected_models]
    m = keys.index(MODEL_KEY)

    def identity(record: RunRecord) -> tuple[tuple[str, ...], int] | None:
        values = tuple(run_value(record, k) for k in keys)
        if record.seed is None or any(v is None for v in values):
            return None
        return values, int(record.seed)

    ids = {id(r): identity(r) for r in records}
    unidentified = tuple(r for r in records if ids[id(r)] is None)
    chosen: dict[tuple[tuple[str, ...], int], RunRecord] = {}
    duplicates = []
    identified = [r for r in records if ids[id(r)] is not None]
    for record in sorted(identified, key=lambda r: (_STATUS_RANK.get(r.status, 3), -_mtime(r.path))):
        key = ids[id(record)]
        if key in chosen:
            duplicates.append(record)
        else:
            chosen[key] = record

    if expected_seeds is None:
        seeds = sorted({seed for _, seed in chosen})
    else:
        seeds = [int(s) for s in expected_seeds]
    seen = _variant_order((v for v, _ in chosen), keys)
    if expected_variants is None:
        variants = seen
    else:
        variants = list(dict.fromkeys(expected_variants))
        variants += [v for v in seen if v not in variants]

    def is_expected(variant: tuple[str, ...]) -> bool:
        if expected_variants is not None:
            return variant in expected_variants
        return expected_models is None or variant[m] in expected_models

    rows = []
    for variant, label in zip(variants, variant_labels(variants, keys)):
        runs = [r for (v, _), r in chosen.items() if v == variant]
        expected = sorted(set(seeds) if is_expected(variant) else set())
        seen_seeds = {r.seed for r in runs}
        missing = tuple(RunRecord(variant[m], s, "missing", None) for s in expected if s not in seen_seeds)
        ok = sorted((r for r in runs if r.status == "ok"), key=lambda r: r.seed)
        rows.append(TableRow(
            model=variant[m],
            label=label,
            stats=types.MappingProxyType({k: student_t_interval(_metric(r, k) for r in ok) for k in METRICS}),
            seeds=tuple(r.seed for r in ok),
            expected_seeds=tuple(sorted(set(expected) | seen_seeds)),
            failed=tuple(sorted((r for r in runs if r.status == "failed"), key=lambda r: r.seed)),
            unfinished=tuple(sorted((r for r in runs if r.status == "unfinished"), key=lambda r: r.seed)),
            missing=missing,
            variant=tuple(zip(keys, variant)),
        ))
    envs = sorted({str(r.metrics["env"]) for r in chosen.values() if r.status == "ok" and "env" in r.metrics})
    return Table(
        rows=tuple(rows),
        expert=types.MappingProxyType(dict(expert)) if expert is not None else None,
        envs=tuple(envs),
        unidentified=unidentified,
        duplicates=tuple(sorted(duplicates, key=lambda r: str(r.path))),
        paper=paper,
        keys=keys,
    )


def _mtime(path: Path | None) -> float:
    if path is None:
        return 0.0
    try:
        return max(p.stat().st_mtime for p in (path / SUMMARY_FILE, path / ERROR_FILE, path / ".hydra") if p.exists())
    except ValueError:
        return 0.0


# --------------------------------------------------------------------------- outputs


def _fmt(metric: str, value: float) -> str:
    return METRIC[metric].format(value)


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


# Env names (summary.json "env") that play the paper's protocol: single-player Pong.
SINGLE_PLAYER_ENVS: tuple[str, ...] = ("pong", "single_pong", "single_player_pong")


def _env_note(table: Table) -> str:
    envs, protocol = ", ".join(table.envs), (table.paper or PAPER).protocol
    if all(e in SINGLE_PLAYER_ENVS for e in table.envs):
        return f"Our runs' environment: {envs} (single-player Pong, the paper's protocol)."
    if any("atari" in e.lower() or "ale" in e.lower() for e in table.envs):
        return (f"Our runs' environment: {envs}: Atari Pong against the built-in opponent, not the paper's "
                f"{protocol} protocol (a round also ends when the agent scores), so catches per "
                "round are not directly comparable with the paper's.")
    return f"Our runs' environment: {envs}; the paper's protocol is {protocol}."


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
    paper_cols = [f"Paper: {METRIC_LABELS[paper.metric].lower()} †"] if paper is not None else []
    header = [first, "Seeds (ok / expected)"] + [METRIC_LABELS[m] for m in table.metrics] + paper_cols + ["Failed / unfinished / missing"]
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
            f"{paper.protocol}, {METRIC_LABELS[paper.metric].lower()}; no intervals published. "
            "\"not published\" = a baseline the paper compares without a published number.")
    if table.envs:
        notes.append(_env_note(table))
    problems = [(row.label, r) for row in table.rows for r in row.problems] + [(None, r) for r in table.unidentified]
    if problems:
        keys = [MODEL_KEY, *(k for k in table.keys if k != MODEL_KEY), SEED_KEY]
        named = ", ".join(keys[:-1]) + " or " + keys[-1]
        notes += ["", f"**Runs not counted ({len(problems)}):**", ""]
        for label, r in problems:
            where = f"`{r.path}`" if r.path is not None else "no run folder"
            why = {"failed": f"failed: {r.error}", "unfinished": "unfinished (no summary.json or error.json; killed or still running)",
                   "missing": "missing (expected by the sweep, never started)"}.get(r.status, r.status)
            if label is None:
                why = f"{r.status}; {named} unknown (no {'/'.join(k + '=' for k in keys)} in .hydra/overrides.yaml or config)"
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


CSV_COLUMNS: tuple[str, ...] = (
    ("source", "model", "label", "n_seeds", "n_expected", "seeds", "n_failed", "failed_seeds",
     "n_unfinished", "unfinished_seeds", "n_missing", "missing_seeds")
    + tuple(f"{m}_{s}" for m in METRICS for s in ("mean", "ci95", "low", "high"))
    + ("paper_catches_per_round", "paper_citation")
)


def csv_columns(table: Table) -> tuple[str, ...]:
    """CSV_COLUMNS, with one column per row key other than the model after "label" (a variant table)."""
    extra = tuple(k for k in table.keys if k != MODEL_KEY)
    i = CSV_COLUMNS.index("label") + 1
    return CSV_COLUMNS[:i] + extra + CSV_COLUMNS[i:]


def write_csv(table: Table, path: str | os.PathLike) -> Path:
    """One line per model or variant (source "ours"), plus the expert (source "expert").

    ``<metric>_ci95`` is the interval half-width, ``_low``/``_high`` its ends; empty cells
    are undefined (one seed, no run). ``paper_catches_per_round`` is the paper's figure
    (empty when ``table.paper`` is None). A variant table has a column per row key, named
    by the key (e.g. ``graph``, ``model.options.dynamics``), holding the variant's value.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = csv_columns(table)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
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
            for m in METRICS:
                iv = row.stats[m]
                line.update({f"{m}_mean": _num(iv.mean), f"{m}_ci95": _num(iv.half_width),
                             f"{m}_low": _num(iv.low), f"{m}_high": _num(iv.high)})
            writer.writerow(line)
        if table.expert is not None:
            line = {c: "" for c in columns}
            line.update({"source": "expert", "model": "expert", "label": "Expert (reference)", "n_seeds": 1})
            for m in METRICS:
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
    spec = METRIC[metric]
    means = np.array([r.stats[metric].mean for r in rows], dtype=float)
    bounds = np.array([r.stats[metric].clipped(spec.lower, spec.upper) for r in rows], dtype=float).reshape(-1, 2)
    return means, np.stack([means - bounds[:, 0], bounds[:, 1] - means])


def plot_table(table: Table, path: str | os.PathLike) -> Path:
    """Bar chart with 95% CI error bars, one panel per metric (Agg; no pyplot state).

    The catches-per-round panel shows the paper's published figures as hatched bars beside
    ours, labelled as the paper's; the expert is a dashed reference line where given.
    A variant table (an ablation) is drawn by ``plot_variants`` instead.
    """
    if table.is_variant_table:
        return plot_variants(table, path)
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = table.rows
    paper_metric = table.paper.metric if table.paper is not None else None
    x = np.arange(len(rows))
    fig = Figure(figsize=(4.2 * 3, 3.6 * 2), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
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
        ax.set_title(METRIC_LABELS[metric])
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
        if table.paper is not None:
            text += f"\nPaper figures (hatched): Cai & Zhao,\narXiv 2606.21295, {table.paper.protocol}."
        spare.text(0.0, 1.0, text, va="top", ha="left", fontsize=9, transform=spare.transAxes)
    fig.suptitle("Pong: behavior-cloned agents, mean and 95% CI over seeds")
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

    if metric not in METRICS:
        raise TableError(f"Unknown metric '{metric}'; choose one of {', '.join(METRICS)}.")
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
    ax.set_xlabel(METRIC_LABELS[metric])
    ax.axvline(0, color="grey", linewidth=0.5)
    ax.legend(fontsize=7, loc="lower right")
    keys = ", ".join(k for k in table.keys if k != MODEL_KEY) or MODEL_KEY
    ax.set_title(f"{METRIC_LABELS[metric]} per variant, mean ± 95% Student-t CI over seeds (best on top)\n{CLIP_NOTE}\n"
                 f"rows: {keys}\nenv: {', '.join(table.envs) or 'unknown'}; runs not counted: {table.n_problems}",
                 fontsize=8)
    fig.savefig(path, dpi=110)
    return path
