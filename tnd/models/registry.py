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

import dataclasses
from collections.abc import Callable

import numpy as np
from flax import nnx

from tnd.models.base import SequenceModel
from tnd.registry import Registry, check_options, keyword_options

ModelBuilder = Callable[..., SequenceModel]
GRAPH_MODES = ("always", "optional", None)
BUILDER_ARGUMENTS = ("obs_shape", "num_actions", "rngs")  # what build_model passes every builder


class UnknownModelError(ValueError):
    """A model name that is not registered."""


class ModelOptionError(ValueError):
    """A model built with an option it does not have, or with an impossible size."""


@dataclasses.dataclass(frozen=True)
class RegisteredModel:
    """A registered model: its builder and how the harness sizes it and hands it a graph.

    ``width_option``: the integer option budget sizing searches over; ``graph``: whether it
    runs on a neuron graph (``"always"``, ``"optional"`` when ``wired``, None);
    ``graph_data``: it holds its graph as data (seeds with graphs of one size share a program).
    """

    builder: ModelBuilder
    width_option: str = "hidden_size"
    graph: str | None = None
    graph_data: bool = False


_MODELS: Registry[RegisteredModel] = Registry(
    "model", UnknownModelError, listed="Valid models", hint="Register a new one with tnd.models.register_model.",
)


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
        _MODELS.register(name, RegisteredModel(builder, width_option, graph, bool(graph_data)))
        return builder

    return decorator


def model_names() -> list[str]:
    """The registered models, sorted."""
    return _MODELS.names()


def registered_model(name: str) -> RegisteredModel:
    """Model ``name``'s registration (`UnknownModelError` naming the valid ones)."""
    return _MODELS.get(name)


def width_option(name: str) -> str:
    """The integer option of model ``name`` that sets its size (for budget sizing)."""
    return registered_model(name).width_option


def graph_mode(name: str) -> str | None:
    """Whether model ``name`` runs on a neuron graph: ``"always"``, ``"optional"`` or None."""
    return registered_model(name).graph


def holds_graph_as_data(name: str) -> bool:
    """Whether model ``name`` holds its graph as data (seeds with graphs of one size share a program)."""
    return registered_model(name).graph_data


def get_model_builder(name: str) -> ModelBuilder:
    """The builder registered as ``name``."""
    return registered_model(name).builder


def model_option_names(name: str) -> list[str] | None:
    """The options model ``name``'s builder accepts, the shared graph options included for
    a graph-based model (None: any, its builder takes ``**options`` of its own)."""
    from tnd.models.wiring import GRAPH_OPTIONS

    graph = GRAPH_OPTIONS if graph_mode(name) is not None else ()
    valid = keyword_options(get_model_builder(name), fixed=BUILDER_ARGUMENTS, var_keyword=graph or None)
    return None if valid is None else sorted(valid | set(graph))


def build_model(name: str, *, obs_shape: tuple[int, ...], num_actions: int, rngs: nnx.Rngs, **options) -> SequenceModel:
    """Builds registered model ``name``; one readable error for an unknown option or a bad size."""
    builder = get_model_builder(name)
    if isinstance(num_actions, (bool, np.bool_)) or not isinstance(num_actions, (int, np.integer)) or num_actions < 1:
        raise ModelOptionError(f"Model '{name}' needs num_actions >= 1 (an integer), got {num_actions!r}.")
    check_options(f"Model '{name}'", options, model_option_names(name), ModelOptionError)
    return builder(obs_shape=tuple(obs_shape), num_actions=int(num_actions), rngs=rngs, **options)
