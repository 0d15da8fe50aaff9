"""The model registry: config names -> harness model builders.

A builder has the signature ``builder(*, obs_shape, num_actions, rngs, **options)`` and
returns a `SequenceModel`. Register your own with ``@register_model("name", width_option=...)``;
``width_option`` names the integer option that budget sizing searches over, and
``graph`` says whether the model runs on a neuron graph: ``"always"`` (it takes the graph
group), ``"optional"`` (only when ``wired``), None (never). A graph-based builder takes the
shared `tnd.models.wiring.GraphOptions` as ``**graph_options``; ``graph_data=True`` says it
holds the graph as data (arrays in its state, `tnd.graph.GraphArrays`), so seeds with
graphs of one size share one compiled program.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
from flax import nnx

from tnd.models.base import SequenceModel

ModelBuilder = Callable[..., SequenceModel]
_MODELS: dict[str, ModelBuilder] = {}
_WIDTH_OPTIONS: dict[str, str] = {}
_GRAPH_MODES: dict[str, str | None] = {}
_GRAPH_DATA: set[str] = set()
GRAPH_MODES = ("always", "optional", None)


class UnknownModelError(ValueError):
    """A model name that is not registered."""


class ModelOptionError(ValueError):
    """A model built with an option it does not have, or with an impossible size."""


def register_model(
    name: str, width_option: str = "hidden_size", graph: str | None = None, graph_data: bool = False,
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: registers ``builder`` under ``name``; a later registration replaces it."""
    if not isinstance(name, str) or not name:
        raise ModelOptionError(f"register_model needs a non-empty name, got {name!r}.")
    if graph not in GRAPH_MODES:
        raise ModelOptionError(f"register_model('{name}'): graph must be one of {GRAPH_MODES}, got {graph!r}.")

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if not callable(builder):
            raise ModelOptionError(f"register_model('{name}') needs a builder function, got {builder!r}.")
        _MODELS[name] = builder
        _WIDTH_OPTIONS[name] = width_option
        _GRAPH_MODES[name] = graph
        (_GRAPH_DATA.add if graph_data else _GRAPH_DATA.discard)(name)
        return builder

    return decorator


def model_names() -> list[str]:
    return sorted(_MODELS)


def width_option(name: str) -> str:
    """The integer option of model ``name`` that sets its size (for budget sizing)."""
    get_model_builder(name)
    return _WIDTH_OPTIONS[name]


def graph_mode(name: str) -> str | None:
    """Whether model ``name`` runs on a neuron graph: ``"always"``, ``"optional"`` or None."""
    get_model_builder(name)
    return _GRAPH_MODES[name]


def holds_graph_as_data(name: str) -> bool:
    """Whether model ``name`` holds its graph as data (seeds with graphs of one size share a program)."""
    get_model_builder(name)
    return name in _GRAPH_DATA


def get_model_builder(name: str) -> ModelBuilder:
    if name not in _MODELS:
        raise UnknownModelError(
            f"Unknown model '{name}'. Valid models: {', '.join(model_names())}. "
            "Register a new one with tnd.models.register_model."
        )
    return _MODELS[name]


def model_option_names(name: str) -> list[str] | None:
    """The options model ``name``'s builder accepts, the shared graph options included for
    a graph-based model (None: any, its builder takes ``**options`` of its own)."""
    from tnd.models.wiring import GRAPH_OPTIONS

    params = inspect.signature(get_model_builder(name)).parameters.values()
    graph = GRAPH_OPTIONS if graph_mode(name) is not None else ()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params) and not graph:
        return None
    return sorted({p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
                   and p.name not in ("obs_shape", "num_actions", "rngs")} | set(graph))


def build_model(name: str, *, obs_shape: tuple[int, ...], num_actions: int, rngs: nnx.Rngs, **options) -> SequenceModel:
    """Builds registered model ``name``; one readable error for an unknown option or a bad size."""
    builder = get_model_builder(name)
    if isinstance(num_actions, (bool, np.bool_)) or not isinstance(num_actions, (int, np.integer)) or num_actions < 1:
        raise ModelOptionError(f"Model '{name}' needs num_actions >= 1 (an integer), got {num_actions!r}.")
    valid = model_option_names(name)
    unknown = sorted(set(options) - set(valid)) if valid is not None else []
    if unknown:
        raise ModelOptionError(
            f"Model '{name}' has no option {', '.join(map(repr, unknown))}. Valid options: {', '.join(valid) or '(none)'}."
        )
    return builder(obs_shape=tuple(obs_shape), num_actions=int(num_actions), rngs=rngs, **options)
