"""Harness models: the TND model, the baselines, encoders, the registry, budget sizing.

Importing `tnd.models` registers every built-in model: ``tnd``, ``rnn``, ``sparse_rnn``,
``lstm``, ``cfc``, ``transformer``.
"""

from tnd.models.base import SequenceModel, compile_step, count_params, reset_carry
from tnd.models.registry import (
    ModelOptionError,
    UnknownModelError,
    build_model,
    get_model_builder,
    graph_mode,
    holds_graph_as_data,
    model_names,
    model_option_names,
    register_model,
    width_option,
)

# Model modules register themselves on import.
from tnd.models import cfc, rnn, sparse_rnn, tnd_model, transformer  # noqa: E402,F401

from tnd.models.budget import BudgetError, build_for_budget, effective_param_count  # noqa: E402

__all__ = [
    "BudgetError",
    "ModelOptionError",
    "SequenceModel",
    "UnknownModelError",
    "build_for_budget",
    "build_model",
    "compile_step",
    "count_params",
    "effective_param_count",
    "get_model_builder",
    "graph_mode",
    "holds_graph_as_data",
    "model_names",
    "model_option_names",
    "register_model",
    "reset_carry",
    "width_option",
]
