"""Harness models: the TND model, the baselines, encoders, the registry."""

from tnd.models.base import SequenceModel, compile_step, count_params, reset_carry
from tnd.models.registry import (
    UnknownModelError,
    build_model,
    get_model_builder,
    model_names,
    register_model,
)

__all__ = [
    "SequenceModel",
    "UnknownModelError",
    "build_model",
    "compile_step",
    "count_params",
    "get_model_builder",
    "model_names",
    "register_model",
    "reset_carry",
]
