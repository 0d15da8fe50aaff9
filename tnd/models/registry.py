"""The model registry: config names -> harness model builders.

A builder has the signature ``builder(*, obs_shape, num_actions, rngs, **options)`` and
returns a `SequenceModel`. Register your own with ``@register_model("name", width_option=...)``;
``width_option`` names the integer option that budget sizing searches over.
"""

from __future__ import annotations

from collections.abc import Callable

from flax import nnx

from tnd.models.base import SequenceModel

ModelBuilder = Callable[..., SequenceModel]
_MODELS: dict[str, ModelBuilder] = {}
_WIDTH_OPTIONS: dict[str, str] = {}


class UnknownModelError(ValueError):
    """A model name that is not registered."""


def register_model(name: str, width_option: str = "hidden_size") -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: registers ``builder`` under ``name``; a later registration replaces it."""

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        _MODELS[name] = builder
        _WIDTH_OPTIONS[name] = width_option
        return builder

    return decorator


def model_names() -> list[str]:
    return sorted(_MODELS)


def width_option(name: str) -> str:
    """The integer option of model ``name`` that sets its size (for budget sizing)."""
    get_model_builder(name)
    return _WIDTH_OPTIONS[name]


def get_model_builder(name: str) -> ModelBuilder:
    if name not in _MODELS:
        raise UnknownModelError(
            f"Unknown model '{name}'. Valid models: {', '.join(model_names())}. "
            "Register a new one with tnd.models.register_model."
        )
    return _MODELS[name]


def build_model(name: str, *, obs_shape: tuple[int, ...], num_actions: int, rngs: nnx.Rngs, **options) -> SequenceModel:
    return get_model_builder(name)(obs_shape=tuple(obs_shape), num_actions=num_actions, rngs=rngs, **options)
