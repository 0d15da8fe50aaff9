"""The settings a run's estimate reads: `Run`, its values as dotted names
(``train.batch_size``, ``model.options.num_neurons``, ``graph.options.k``, ...) with each
one's ordinary value, built from an `ExperimentSpec` by `run_of`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tnd.app.memory.graphs import TOPOLOGY_DEFAULTS
from tnd.models.registry import get_model_builder, width_option
from tnd.training.config import DataSpec, ExperimentSpec, TrainSpec


def option_default(fn: Callable, name: str, fallback: Any = None) -> Any:
    """The default of ``fn``'s parameter ``name`` (``fallback`` when it has none, or None)."""
    try:
        default = inspect.signature(fn).parameters[name].default
    except (KeyError, TypeError, ValueError):
        return fallback
    return fallback if default is inspect.Parameter.empty or default is None else default


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Run:
    """What the estimate reads: the settings as dotted names (``train.batch_size``,
    ``model.options.num_neurons``, ``graph.options.k``, ...) with their values, and the
    fixed context (model, env shapes, topology)."""

    model: str
    values: Mapping[str, Any]
    references: Mapping[str, Any]  # a setting's ordinary value (its default): what "lower it" compares with
    obs_shape: tuple[int, ...]
    num_actions: int
    topology: str | None = None
    graph_prefix: str = "graph.options"
    devices: int = 1
    given_dataset_bytes: float | None = None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key)
        return default if value is None else value

    def option(self, key: str, default: Any = None) -> Any:
        return self.get(f"model.options.{key}", default)

    def topology_options(self) -> dict[str, Any]:
        prefix = self.graph_prefix + "."
        return {k[len(prefix):]: v for k, v in self.values.items() if k.startswith(prefix) and v is not None}

    def replace(self, key: str, value: Any) -> Run:
        return dataclasses.replace(self, values={**self.values, key: value})


def run_of(spec: ExperimentSpec, obs_shape, num_actions: int, options: Mapping[str, Any], *, seeds: int = 1,
           env_config: Any = None, devices: int = 1) -> Run:
    """The settings of ``spec`` with the model's resolved ``options`` (`tnd.app.experiment.model_options`)."""
    name = spec.model.name
    values: dict[str, Any] = {
        "train.batch_size": int(spec.train.batch_size), "train.window": int(spec.train.window),
        "seeds": int(seeds), "param_budget": None if spec.param_budget is None else int(spec.param_budget),
        "data.num_episodes": int(spec.data.num_episodes),
    }
    references: dict[str, Any] = {
        "train.batch_size": TrainSpec.batch_size, "train.window": TrainSpec.window, "seeds": 1, "param_budget": None,
        "data.num_episodes": DataSpec.num_episodes,
    }
    max_steps = getattr(env_config, "max_steps", None)
    if is_int(max_steps):
        values["env.options.max_steps"] = int(max_steps)
        field = {f.name: f for f in dataclasses.fields(env_config)}.get("max_steps") if dataclasses.is_dataclass(env_config) else None
        if field is not None and is_int(field.default):
            references["env.options.max_steps"] = field.default
    builder = get_model_builder(name)
    own_topology = spec.model.options.get("topology") is not None
    prefix = "model.options.topology_options" if own_topology else "graph.options"
    topology = options.get("topology")
    for key, value in options.items():
        if key in ("topology_options", "graph", "program_shape"):
            continue
        if isinstance(value, Mapping):
            for sub, v in value.items():
                values[f"model.options.{key}.{sub}"] = v
            continue
        values[f"model.options.{key}"] = value
        default = option_default(builder, key)
        if key == width_option(name) and default is None:
            default = 64  # GraphOptions.resolve's default_neurons
        if key == "inner_rounds":
            default = "auto"
        if default is not None and key not in ("graph_seed", "num_sensory", "num_motor"):
            references[f"model.options.{key}"] = default
    references["model.options.interaction_options.rank"] = 8
    references["model.options.dynamics_options.backbone_units"] = None
    if topology is not None:
        for key, value in dict(options.get("topology_options") or {}).items():
            values[f"{prefix}.{key}"] = value
            default = TOPOLOGY_DEFAULTS.get(topology, {}).get(key)
            if default is not None:
                references[f"{prefix}.{key}"] = default
    given = None
    if spec.data.path:
        folder = Path(spec.data.path)
        if folder.is_dir():
            given = float(sum(f.stat().st_size for f in folder.iterdir() if f.is_file()))
    return Run(name, values, references, tuple(int(v) for v in obs_shape), int(num_actions), topology, prefix,
               max(1, int(devices)), given)
