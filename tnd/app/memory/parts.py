"""A run's memory while it trains, part by part (`estimate`): the parameters and optimizer
state, one training step's activations and the dataset, plus the cost of building its
graph(s) (closed form from the settings, float32, nothing allocated).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from tnd.app.memory.models import MODEL_SIZES, model_size, predict_width
from tnd.app.memory.settings import Run, is_int, option_default, run_of
from tnd.models.registry import get_model_builder, width_option
from tnd.training.config import ExperimentSpec

FLOAT_BYTES = 4
PARAM_BYTES = 32  # per parameter: parameter, gradient, 2 AdamW moments, and the step's new copies (no donation on CPU)
ACTIVATION_FACTOR = 1.2  # the backward pass's temporaries on top of the residuals it keeps


@dataclasses.dataclass(frozen=True)
class Part:
    """One part of a run's memory while it trains: what it is, its bytes on the accelerator
    and on the host (on a CPU both are the host's), and how they add up."""

    what: str
    device_bytes: float
    host_bytes: float = 0.0
    formula: str = ""

    @property
    def bytes(self) -> float:
        return self.device_bytes + self.host_bytes


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What a run needs: its memory parts while training, the graph build's seconds and
    host memory (before training: not added to the parts), the width it is sized at and its
    stored parameter count (None: a model without a formula)."""

    parts: tuple[Part, ...]
    build_seconds: float = 0.0
    build_bytes: float = 0.0
    build_what: str = ""
    width: int | None = None
    params: float | None = None

    @property
    def total_bytes(self) -> float:
        return float(sum(p.bytes for p in self.parts))

    def bytes_on(self, device: bool) -> float:
        """The parts' bytes on the accelerator (``device``) or on the host."""
        return float(sum(p.device_bytes if device else p.host_bytes for p in self.parts))


def _width(run: Run) -> int:
    """The model's width option as given, else its builder's default (64 without one)."""
    value = run.option(width_option(run.model))
    if is_int(value):
        return int(value)
    default = option_default(get_model_builder(run.model), width_option(run.model))
    return int(default) if is_int(default) else 64


def _times(*factors: str) -> str:
    """The non-empty ``factors`` joined by `` × `` (a part's formula)."""
    return " × ".join(f for f in factors if f)


def estimate(run: Run) -> Estimate:
    """The memory parts and build cost of ``run`` (closed form; nothing is built)."""
    parts: list[Part] = []
    seeds = int(run.get("seeds", 1))
    stack = f"{seeds} seeds" if seeds > 1 else ""
    batch, window = int(run.get("train.batch_size")), int(run.get("train.window"))
    budget = run.get("param_budget")
    width, size, build_seconds, build_bytes, build_what = _width(run), None, 0.0, 0.0, ""
    if run.model in MODEL_SIZES:
        tried, reach = [width], True
        if budget is not None:
            width, tried, reach = predict_width(run, int(budget))
        size = model_size(run, width)
        graphs = [g for g in (model_size(run, w).graph for w in sorted(set(tried))) if g is not None]
        if graphs:
            build_seconds = sum(g.build_seconds for g in graphs)
            largest = max(graphs, key=lambda g: g.edges)
            build_bytes = largest.build_bytes
            graph = f"{largest.topology} graph{'s' if len(graphs) > 1 else ''}"
            build_what = (f"the {graph} on {largest.neurons:,} neurons (about {count_text(largest.edges)} edges)"
                          if budget is None else
                          f"the {len(graphs)} {graph} that sizing {run.model} to param_budget={int(budget)} tries, "
                          f"of up to {largest.neurons:,} neurons (about {count_text(largest.edges)} edges)")
        if not reach and size.counted * 1.2 < int(budget):
            size = None  # out of reach: the search refuses the budget itself (BudgetError), after the graphs above
    if size is not None:
        parts.append(Part("the parameters and optimizer state", size.params * PARAM_BYTES * seeds, 0.0,
                          _times(f"{count_text(size.params)} parameters", f"{PARAM_BYTES} bytes", stack)))
        per_device = batch // run.devices if batch % run.devices == 0 else batch
        floats = per_device * (window * size.per_step + size.per_sample) + size.fixed
        per_step = (f"{count_text(size.per_step)} floats per step, {size.rounds} rounds of {width:,} neurons"
                    if size.rounds > 1 else f"{count_text(size.per_step)} floats per step")
        parts.append(Part("one training step's activations", floats * FLOAT_BYTES * ACTIVATION_FACTOR * seeds, 0.0,
                          _times(f"batch {per_device:,}", f"window {window:,}", per_step, stack)))
    if run.given_dataset_bytes is not None:
        parts.append(Part("the dataset", run.given_dataset_bytes, run.given_dataset_bytes,
                          "data.path's files, on the host and the device"))
    elif run.get("env.options.max_steps") is not None:
        steps = int(run.get("data.num_episodes")) * int(run.get("env.options.max_steps"))
        step_bytes = FLOAT_BYTES * int(math.prod(run.obs_shape)) + 9  # observation, label, episode flag, window start
        parts.append(Part("the dataset", steps * step_bytes, steps * step_bytes,
                          _times(f"{int(run.get('data.num_episodes')):,} episodes",
                                 f"{int(run.get('env.options.max_steps')):,} steps", f"{step_bytes} bytes",
                                 "2 copies (host and device)")))
    return Estimate(tuple(parts), build_seconds, build_bytes, build_what, width if size else None,
                    None if size is None else size.params)


def estimate_resources(spec: ExperimentSpec, obs_shape, num_actions: int, options: Mapping[str, Any], *,
                       seeds: int = 1, env_config: Any = None, devices: int = 1) -> Estimate:
    """The estimate (`estimate`) of ``spec`` with the model's resolved ``options``."""
    return estimate(run_of(spec, obs_shape, num_actions, options, seeds=seeds, env_config=env_config, devices=devices))


def count_text(x: float) -> str:
    """A count as text: ``12,345`` below a billion, ``3.0e9`` from there."""
    if x < 1e9:
        return f"{x:,.0f}"
    exponent = math.floor(math.log10(x))
    return f"{x / 10 ** exponent:.1f}e{exponent}"
