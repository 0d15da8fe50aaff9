"""`RunRecord`s -> `Table`: one `TableRow` per model or variant, aggregated over seeds."""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tnd.evaluation.table import columns
from tnd.evaluation.table.columns import (
    KEY_LABELS,
    MODEL_KEY,
    MODEL_LABELS,
    PAPER,
    SEED_KEY,
    VARIANT_LABEL_SEPARATOR,
    PublishedFigures,
)
from tnd.evaluation.table.runs import RunRecord, run_value
from tnd.evaluation.table.statistics import Interval, TableError, student_t_interval
from tnd.run_folder import ERROR_FILE, SUMMARY_FILE

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
    metrics: tuple[str, ...] = dataclasses.field(default_factory=lambda: tuple(columns.METRIC))  # column order
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


def model_order(models: Iterable[str]) -> list[str]:
    """Models in the paper's order (``PAPER.models``), others after it by name."""
    known = {m: i for i, m in enumerate(PAPER.models)}
    return sorted(set(models), key=lambda m: (known.get(m, len(known)), m))


def _variant_order(variants: Iterable[tuple[str, ...]], keys: Sequence[str]) -> list[tuple[str, ...]]:
    """Variants sorted by model (the paper's order), then by their other values."""
    variants = set(variants)
    m = keys.index(MODEL_KEY)
    rank = {model: i for i, model in enumerate(model_order(v[m] for v in variants))}
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
    metrics: Sequence[str] | None = None,
) -> Table:
    """One row per variant with the mean and 95% Student-t CI over seeds of every metric.

    metrics: the columns, names of `columns.METRIC` (default: all of them, in order).

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
    metrics = _checked_metrics(metrics)
    if MODEL_KEY not in keys or SEED_KEY in keys or len(set(keys)) != len(keys):
        raise TableError(f"Row keys must name 'model', not 'seed', each once; got {list(keys)}.")
    expected_variants = _expected_variants(expected_variants, expected_models, keys)
    chosen, duplicates, unidentified = choose_runs(records, keys)
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
    m = keys.index(MODEL_KEY)
    rank = {model: i for i, model in enumerate(model_order(v[m] for v in variants))}
    variants.sort(key=lambda v: rank[v[m]])  # the paper's model order; a sweep may launch them in another

    def is_expected(variant: tuple[str, ...]) -> bool:
        if expected_variants is not None:
            return variant in expected_variants
        return expected_models is None or variant[m] in expected_models

    rows = tuple(
        _row(variant, label, [r for (v, _), r in chosen.items() if v == variant],
             seeds if is_expected(variant) else [], keys, metrics)
        for variant, label in zip(variants, variant_labels(variants, keys))
    )
    envs = sorted({str(r.metrics["env"]) for r in chosen.values() if r.status == "ok" and "env" in r.metrics})
    return Table(
        rows=rows,
        expert=types.MappingProxyType(dict(expert)) if expert is not None else None,
        envs=tuple(envs),
        unidentified=unidentified,
        duplicates=tuple(sorted(duplicates, key=lambda r: str(r.path))),
        paper=paper,
        metrics=metrics,
        keys=keys,
    )


def _checked_metrics(metrics: Sequence[str] | None) -> tuple[str, ...]:
    """The table's columns: ``metrics`` (all of `columns.METRIC` when None); refuses an undeclared one."""
    metrics = tuple(columns.METRIC) if metrics is None else tuple(metrics)
    unknown = [m for m in metrics if m not in columns.METRIC]
    if unknown:
        raise TableError(f"Unknown metric(s) {', '.join(unknown)}; declared: {', '.join(columns.METRIC)}.")
    return metrics


def _expected_variants(
    expected_variants: Sequence[Sequence[str]] | None, expected_models: Sequence[str] | None, keys: tuple[str, ...]
) -> list[tuple[str, ...]] | None:
    """The expected variants as tuples of strings in ``keys`` order, restricted to
    ``expected_models`` (with ``keys=("model",)``: one per expected model); None: not given."""
    if expected_variants is None and expected_models is not None and keys == (MODEL_KEY,):
        expected_variants = [(m,) for m in expected_models]
    if expected_variants is None:
        return None
    expected_variants = [tuple(str(x) for x in v) for v in expected_variants]
    bad = [v for v in expected_variants if len(v) != len(keys)]
    if bad:
        raise TableError(f"Expected variant {list(bad[0])} does not give one value per row key {list(keys)}.")
    if expected_models is not None:
        expected_variants = [v for v in expected_variants if v[keys.index(MODEL_KEY)] in expected_models]
    return expected_variants


def variant_of(record: RunRecord, keys: Sequence[str]) -> tuple[str | None, ...]:
    """The row a run belongs to: its values of the row ``keys`` (None where unknown)."""
    return tuple(run_value(record, k) for k in keys)


def choose_runs(
    records: Sequence[RunRecord], keys: tuple[str, ...]
) -> tuple[dict[tuple[tuple[str, ...], int], RunRecord], list[RunRecord], tuple[RunRecord, ...]]:
    """The run that counts for each (variant, seed): the best (ok > failed > unfinished, then
    the newest); returns them, the other runs of a counted pair (duplicates) and the runs
    whose seed or a row key's value is unknown (unidentified)."""

    def identity(record: RunRecord) -> tuple[tuple[str, ...], int] | None:
        values = variant_of(record, keys)
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
    return chosen, duplicates, unidentified


def _row(variant: tuple[str, ...], label: str, runs: list[RunRecord], expected_seeds: Sequence[int],
         keys: tuple[str, ...], metrics: tuple[str, ...]) -> TableRow:
    """The row of ``variant``: intervals over its ok ``runs``, its failed and unfinished runs,
    and a "missing" record for each expected seed without a run."""
    m = keys.index(MODEL_KEY)
    expected = sorted(set(expected_seeds))
    seen_seeds = {r.seed for r in runs}
    missing = tuple(RunRecord(variant[m], s, "missing", None) for s in expected if s not in seen_seeds)
    ok = sorted((r for r in runs if r.status == "ok"), key=lambda r: r.seed)
    return TableRow(
        model=variant[m],
        label=label,
        stats=types.MappingProxyType({k: student_t_interval(_metric(r, k) for r in ok) for k in metrics}),
        seeds=tuple(r.seed for r in ok),
        expected_seeds=tuple(sorted(set(expected) | seen_seeds)),
        failed=tuple(sorted((r for r in runs if r.status == "failed"), key=lambda r: r.seed)),
        unfinished=tuple(sorted((r for r in runs if r.status == "unfinished"), key=lambda r: r.seed)),
        missing=missing,
        variant=tuple(zip(keys, variant)),
    )


def _mtime(path: Path | None) -> float:
    if path is None:
        return 0.0
    try:
        return max(p.stat().st_mtime for p in (path / SUMMARY_FILE, path / ERROR_FILE, path / ".hydra") if p.exists())
    except ValueError:
        return 0.0
