"""What the table shows, declared once: its metrics (label, format, range, direction), model
labels, variant-label keys and the paper's published figures."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping


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
