"""Fail fast: the memory a run needs and the time its graph takes to build, from shapes alone.

`tnd.app.experiment.prepare` calls `check_resources` after the cheap checks and before
anything is built (graph, model, dataset, compiled step). A run that cannot fit is refused
with one line (`ResourceError`, a ``ValueError``: the entry points print it as one line)
naming the setting(s) that drive it, the estimate and the memory available::

    tnd-train: error: train.batch_size=100000000 needs about 8 TB of memory, 8 TB of it for one
    training step's activations (batch 100,000,000 × window 16 × 1,043 floats per step); this
    machine has 23 GB available and a run may plan on 80% of it (train.memory_fraction): lower
    train.batch_size.

    estimate = estimate_resources(spec, obs_shape, num_actions, options)   # no check, no arrays
    estimate.parts, estimate.total_bytes, estimate.build_seconds

How the estimate is computed (closed form from the settings, float32, nothing allocated):

* **Parameters and optimizer state**: the model's stored parameters (masked entries of the
  sparse RNN and the wired CfC included) x `PARAM_BYTES` (the parameters, their gradients,
  AdamW's two moments, and the step's new copies of all three) x the seeds of a stack. With
  ``param_budget`` the width is the one the budget search will find (the same closed-form
  counts, `predict_width`). The counts equal the built models' exactly (tested).
* **One training step's activations**: batch x window x the floats the backward pass keeps
  per sample and step (the window's inputs, the encoder, the core's per-step state and, for
  TND, its K rounds of ``[N, d]`` residuals; the Transformer's attention scores over
  ``attention window - 1 + train.window`` keys), plus per-window and per-step terms (TND's
  prepared weights, a dense interaction's ``[N, N]`` matrix), x `ACTIVATION_FACTOR` for the
  backward pass's temporaries, x the seeds, / the data-parallel devices.
* **The dataset**: ``data.num_episodes x env.options.max_steps`` steps (episodes never run
  longer) of observation, label and flags, held twice (the host's copy and the device's);
  a given ``data.path``: twice its files' size.
* **Building the graph** (graph-based models): the topology's edge count in closed form
  (`graph_size`; e.g. ``small_world``: N k, ``layered_ncp``: about 0.115 N^2 at density 0.5),
  its host memory while it is generated (`BUILD_BYTES_PER_EDGE`) and the seconds it takes
  (per-edge costs and breadth-first sweeps measured on a 2-core CPU). With ``param_budget``
  the budget search builds every width it tries (up to twice the predicted width), so
  their sum is bounded. A build over `MAX_BUILD_SECONDS` is refused before it starts. A
  budget beyond the search's largest width is left to the search, which refuses it itself.

The activation estimate was 0.93-1.32x the temporaries of XLA's memory analysis of the
compiled step (CPU) for every model kind, TND's dynamics, interactions and paths (a slow test
keeps it within 0.7-1.6x); the project's real configurations need 1-60 MB per seed, far
below any limit. TND's rounds (``inner_rounds``) need no bound of their own: the core scans
over them (compile time does not grow with K) and the activations grow linearly in K.

Available memory (`available_memory`): on an accelerator, its free memory
(``jax.local_devices()[0].memory_stats()``: ``bytes_limit - bytes_in_use``) for the
parameters, activations and the device's copy of the dataset, and the host's for the rest;
on a CPU all parts share the host's ``MemAvailable`` (``/proc/meminfo``, capped by a cgroup
limit when one is set; ``os.sysconf`` elsewhere). A run may plan on ``train.memory_fraction``
of it (null: `DEFAULT_MEMORY_FRACTION`, 0.8). A model without a formula here (a plugin's) is
estimated by its dataset alone, a plugin's topology at 4 edges per neuron: never refused for
what is not known.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tnd.models.budget import width_for_budget
from tnd.models.registry import get_model_builder, width_option
from tnd.training.config import DataSpec, ExperimentSpec, TrainSpec

if TYPE_CHECKING:
    from tnd.envs import EnvDefinition

DEFAULT_MEMORY_FRACTION = 0.8  # the share of the available memory a run may plan on (train.memory_fraction: null)
MAX_BUILD_SECONDS = 60.0  # a graph (or a budget search's graphs) estimated to take longer to build is refused
FLOAT_BYTES = 4
PARAM_BYTES = 32  # per parameter: parameter, gradient, 2 AdamW moments, and the step's new copies (no donation on CPU)
ACTIVATION_FACTOR = 1.2  # the backward pass's temporaries on top of the residuals it keeps
BUILD_BYTES_PER_EDGE = {"layered_ncp": 200.0}  # a Python set of edge tuples; networkx graphs: the default below
DEFAULT_BUILD_BYTES_PER_EDGE = 400.0
# Seconds per edge of each topology's generator (measured, 2-core CPU), and per element of a
# breadth-first sweep over the edges (the reachability checks: one sweep per BFS level).
SECONDS_PER_EDGE = {
    "layered_ncp": 7e-6, "small_world": 3e-6, "fully_connected": 1.6e-6, "erdos_renyi": 3.7e-6,
    "scale_free": 4.2e-6, "modular": 3.4e-6, "ring": 3e-6, "lattice": 4.3e-6,
}
SECONDS_PER_SWEEP_ELEMENT = 2e-9


# What a closed form may raise on options the builders refuse themselves (with their own message).
ESTIMATE_ERRORS = (ArithmeticError, TypeError, ValueError, KeyError, AttributeError)


class ResourceError(ValueError):
    """A run that cannot fit in this machine's memory, or whose graph would take too long to build."""


# ----------------------------------------------------------------------------- the graph
@dataclasses.dataclass(frozen=True)
class GraphSize:
    """A topology's size in closed form: edges, padded fan-in, input -> readout distance
    (sensory -> motor), neuron types, and what generating it costs."""

    topology: str
    neurons: int
    edges: float
    sensory: int
    motor: int
    fan_in: float
    distance: int
    types: int
    build_seconds: float
    build_bytes: float


def _default(fn: Callable, name: str, fallback: Any = None) -> Any:
    try:
        default = inspect.signature(fn).parameters[name].default
    except (KeyError, TypeError, ValueError):
        return fallback
    return fallback if default is inspect.Parameter.empty or default is None else default


# The built-in topologies' size options with their defaults (those of tnd.graph.topologies' builders).
TOPOLOGY_DEFAULTS: dict[str, dict[str, Any]] = {
    "small_world": {"k": 4, "p": 0.1}, "scale_free": {"m": 2},
    "modular": {"blocks": 4, "p_in": 0.3, "p_out": 0.02}, "ring": {"k": 1}, "layered_ncp": {"density": 0.5},
}


def graph_size(topology: str, neurons: int, options: Mapping[str, Any] | None = None, *,
               num_sensory: int | None = None, num_motor: int | None = None) -> GraphSize | None:
    """The size of the built-in topology ``topology`` on ``neurons`` neurons (None: a topology
    this module has no formula for, e.g. a plugin's). Edge counts are exact for the regular
    topologies and expectations for the random ones."""
    n = int(neurons)
    o = {**TOPOLOGY_DEFAULTS.get(topology, {}), **{k: v for k, v in dict(options or {}).items() if v is not None}}
    s = max(1, n // 8) if num_sensory is None else int(num_sensory)
    m = max(1, n // 8) if num_motor is None else int(num_motor)
    log_n = math.log2(max(n, 2))
    types, distance = 1, 1
    if topology == "fully_connected":
        loops = bool(o.get("self_loops", False))
        edges, fan_in, sweeps = n * (n - 1) + n * loops, n - 1 + loops, 2
    elif topology == "erdos_renyi":
        given = dict(options or {})
        p = given.get("p")
        if p is None:
            p = min(1.0, float(given["density"]) * n / max(n - 1, 1)) if given.get("density") is not None else 0.1
        edges = float(p) * n * (n - 1)
        mean = edges / n
        fan_in, sweeps = mean + 3 * math.sqrt(mean) + 1, log_n / math.log2(max(mean, 2.0)) + 2
    elif topology == "small_world":
        k = int(o.get("k", 4))
        edges, fan_in, sweeps = n * (k // 2) * 2, k + 4, log_n + 2
    elif topology == "scale_free":
        m_ = int(o.get("m", 2))
        edges, fan_in, sweeps = 2 * m_ * max(n - m_, 0), m_ * math.sqrt(n) + m_, log_n + 2
    elif topology == "modular":
        blocks = max(1, int(o.get("blocks", 4)))
        sizes = [n // blocks + (1 if b < n % blocks else 0) for b in range(blocks)]
        inside = sum(z * (z - 1) for z in sizes)
        edges = float(o.get("p_in", 0.3)) * inside + float(o.get("p_out", 0.02)) * (n * n - sum(z * z for z in sizes))
        mean = edges / n
        fan_in, sweeps, types = mean + 3 * math.sqrt(mean) + 1, log_n + 2, blocks
    elif topology == "ring":
        k, both = int(o.get("k", 1)), bool(o.get("bidirectional", True))
        edges = min(n * k * (2 if both else 1), n * (n - 1))
        fan_in = edges / n
        sweeps = (n - s) / (2 * k if both else k) + 2
        distance = 1 if both else max(1, math.ceil((n - m - s + 1) / k))
    elif topology == "lattice":
        rows = math.floor(math.sqrt(n))
        while rows > 1 and n % rows:
            rows -= 1
        cols = n // rows
        periodic = bool(o.get("periodic", False))
        edges = 2 * (rows * (cols - 1) + cols * (rows - 1)) + (2 * (rows + cols) if periodic else 0)
        fan_in, sweeps = 4, rows + cols
        distance = 1 if periodic else max(1, (n - m) // cols - (s - 1) // cols)
    elif topology == "layered_ncp":
        density = float(o.get("density", 0.5))
        hidden = max(n - s - m, 2)
        inter = o.get("num_inter")
        inter = min(max(1, int(round(0.6 * hidden)) if inter is None else int(inter)), hidden - 1)
        command = hidden - inter
        fan = lambda key, default: int(o[key]) if o.get(key) is not None else default  # noqa: E731
        sensory_fanout = fan("sensory_fanout", max(1, int(inter * density)))
        inter_fanout = fan("inter_fanout", max(1, int(command * density)))
        recurrent = fan("recurrent_command_synapses", max(1, int(command * density * 2)))
        motor_fanin = fan("motor_fanin", max(1, int(command * density)))
        edges = s * sensory_fanout + inter * inter_fanout + min(recurrent, command * command) + m * motor_fanin
        fan_in = max(s * sensory_fanout / inter, inter * inter_fanout / command + recurrent / command, motor_fanin) + 3
        sweeps, distance, types = 4, 3, 4
    else:
        return None
    seconds = edges * SECONDS_PER_EDGE.get(topology, 4e-6) + 2 * sweeps * (edges + n) * SECONDS_PER_SWEEP_ELEMENT
    build_bytes = edges * BUILD_BYTES_PER_EDGE.get(topology, DEFAULT_BUILD_BYTES_PER_EDGE)
    return GraphSize(topology, n, float(edges), s, m, float(min(fan_in, n)), int(distance), types, seconds, build_bytes)


# ----------------------------------------------------------------------------- the run's settings
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    if _is_int(max_steps):
        values["env.options.max_steps"] = int(max_steps)
        field = {f.name: f for f in dataclasses.fields(env_config)}.get("max_steps") if dataclasses.is_dataclass(env_config) else None
        if field is not None and _is_int(field.default):
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
        default = _default(builder, key)
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


# ----------------------------------------------------------------------------- the models
@dataclasses.dataclass(frozen=True)
class ModelSize:
    """A model's size at one width: stored and counted (`effective_param_count`) parameters,
    and the floats one training step keeps per sample and time step (``per_step``), per
    sample once per window (``per_sample``) and once per step whatever the batch (``fixed``)."""

    params: float
    counted: float
    per_step: float
    per_sample: float = 0.0
    fixed: float = 0.0
    graph: GraphSize | None = None
    rounds: int = 1


def _io(run: Run, features: int, core_out: float) -> tuple[float, float]:
    """Parameters and per-step floats of the encoder (MLP or conv) and the action head, plus
    the window's inputs and the loss."""
    obs, a = run.obs_shape, run.num_actions
    head = core_out * a + a
    if len(obs) == 2:
        (height, width), f = obs, features
        h1, w1 = (height - 8) // 4 + 1, (width - 8) // 4 + 1
        h2, w2 = (h1 - 4) // 2 + 1, (w1 - 4) // 2 + 1
        params = 8 * 8 * 16 + 16 + 4 * 4 * 16 * 32 + 32 + max(h2 * w2, 1) * 32 * f + f
        per_step = height * width + 2 * 16 * h1 * w1 + 2 * 32 * h2 * w2 + 2 * f
    else:
        d = int(math.prod(obs)) if obs else 1
        params = d * features + features + features * features + features
        per_step = d + 4 * features
    return params + head, per_step + 2 * core_out + 4 * a + 2


def _rnn_size(run: Run, width: int) -> ModelSize:
    f, h = int(run.option("encoder_features", 32)), width
    io_params, io_step = _io(run, f, h)
    core = f * h + h * h + h
    return ModelSize(io_params + core, io_params + core, io_step + 3 * h)


def _lstm_size(run: Run, width: int) -> ModelSize:
    f, h = int(run.option("encoder_features", 32)), width
    io_params, io_step = _io(run, f, h)
    core = 4 * (f * h + h * h + h)
    return ModelSize(io_params + core, io_params + core, io_step + 12 * h)


def _graph(run: Run, neurons: int) -> GraphSize | None:
    if run.topology is None:
        return None
    return graph_size(run.topology, neurons, run.topology_options(),
                      num_sensory=run.option("num_sensory"), num_motor=run.option("num_motor"))


def _cfc_size(run: Run, width: int) -> ModelSize:
    f = int(run.option("encoder_features", 32))
    mode = run.option("mode", "default")
    heads = 1 if mode == "pure" else 4
    wired = run.topology is not None  # a graph (model_options resolved model.options.wired=true into one)
    if wired:
        n = width
        g = _graph(run, n)
        io_params, io_step = _io(run, f, g.motor if g else max(1, n // 8))
        cat = f + n
        stored = heads * (cat * n + n) + (2 * n if mode == "pure" else 0)
        used = (f * (g.sensory if g else 1) + (g.edges if g else 4 * n))
        counted = stored - (cat * n - used) * (1 if mode == "pure" else 2)
        fixed = 2 * 2 * cat * n  # the masked kernels (kernel * mask) and their gradients
        return ModelSize(io_params + stored, io_params + counted, io_step + cat + 2 * heads * n, fixed=fixed, graph=g)
    h = width
    layers = run.option("backbone_layers")
    layers = 1 if layers is None else int(layers)
    units = int(run.option("backbone_units", 128))
    io_params, io_step = _io(run, f, h)
    sizes = [f + h] + [units] * layers
    backbone = sum(a * b + b for a, b in itertools.pairwise(sizes))
    cat = sizes[-1]
    core = backbone + heads * (cat * h + h) + (2 * h if mode == "pure" else 0)
    per_step = io_step + f + h + 2 * units * layers + 2 * heads * h
    return ModelSize(io_params + core, io_params + core, per_step)


def _transformer_size(run: Run, width: int) -> ModelSize:
    f, dm = int(run.option("encoder_features", 32)), width
    heads, layers = int(run.option("num_heads", 2)), int(run.option("num_layers", 2))
    window, ratio = int(run.option("window", 32)), int(run.option("mlp_ratio", 2))
    io_params, io_step = _io(run, f, dm)
    block = 4 * dm + 4 * dm * dm + 4 * dm + dm * ratio * dm + ratio * dm + ratio * dm * dm + dm
    core = f * dm + dm + layers * block + 2 * dm
    keys = window - 1 + int(run.get("train.window", 64))
    per_layer = (12 + 3 * ratio) * dm + 3 * heads * keys + keys / 4  # + the boolean mask
    per_sample = layers * 2 * (window - 1) * dm  # the key/value cache
    return ModelSize(io_params + core, io_params + core, io_step + dm + layers * per_layer, per_sample=per_sample)


def _sparse_rnn_size(run: Run, width: int) -> ModelSize:
    f, n = int(run.option("encoder_features", 32)), width
    g = _graph(run, n)
    s, m = (g.sensory, g.motor) if g else (max(1, n // 8),) * 2
    edges = g.edges if g else 4 * n
    io_params, io_step = _io(run, f, m)
    stored = io_params + f * s + n * n + n
    counted = io_params + f * s + edges + n
    return ModelSize(stored, counted, io_step + 3 * n, fixed=2 * n * n, graph=g)


def _tnd_size(run: Run, width: int) -> ModelSize:
    f, n = int(run.option("encoder_features", 32)), width
    d = int(run.option("state_dim", 4))
    g = _graph(run, n)
    s, m = (g.sensory, g.motor) if g else (max(1, n // 8),) * 2
    edges, fan_in = (g.edges, g.fan_in) if g else (4.0 * n, 4.0)
    s_in = s if run.option("input_neurons", "sensory") == "sensory" else n
    r = m if run.option("readout", "motor") == "motor" else n
    distance = 0 if (s_in == n or r == n) else (g.distance if g else 1)
    rounds = run.option("inner_rounds", "auto")
    k = distance + 1 if not _is_int(rounds) else int(rounds)
    kind, dyn = run.option("interaction", "scalar"), run.option("dynamics", "leaky")
    sharing = run.option("sharing", "shared")
    groups = {"per_neuron": n, "per_type": g.types if g else 1}.get(sharing, 1)
    rank = int(run.get("model.options.interaction_options.rank", 8 if kind == "lowrank" else 4))
    gate = bool(run.option("edge_gate", False))
    io_params, io_step = _io(run, f, r * d)
    per_edge = d if kind == "vector" else 1
    inter = {"vector": edges * d, "lowrank": 2 * n * rank, "plastic": edges + 2 * d * rank + 1}.get(kind, edges)
    inter += edges if gate else 0
    units = int(run.get("model.options.dynamics_options.backbone_units") or max(8, 2 * d))
    per_neuron = {"gated": 6 * d * d, "cfc": 2 * d * units + units * 4 * d}.get(dyn, 2 * d * d)  # channel-map weights
    biases = {"gated": 6 * d, "cfc": units + 4 * d}.get(dyn, d)
    taus = n * d if dyn == "leaky" and run.get("model.options.dynamics_options.learn_tau", True) else 0
    core = f * s_in * d + s_in * d + inter + groups * (per_neuron + biases) + taus
    params = io_params + core
    path = run.option("path", "auto")
    if path == "auto":
        path = "sparse" if fan_in <= 2.5 * math.sqrt(n) else "dense"
    phi = run.get("model.options.interaction_options.phi", "tanh")
    fused = dyn == "leaky" and kind != "plastic" and path == "sparse" and phi != "gelu"
    residuals = {"leaky": 2 if fused else 7, "gated": 14, "cfc": 8 + 3 * units / d}.get(dyn, 7)
    per_round = residuals * n * d + r * d + s_in * d
    if kind == "plastic":
        per_round += (fan_in * n * (d + 2) if path == "sparse" else 3 * n * n) + 2 * n * rank
    per_sample = n * d * (1 if dyn == "leaky" else 0) + (n * d if groups > 1 else d)
    if path == "sparse" and per_edge > 1:
        per_sample += 2 * fan_in * n * d  # the prepared per-slot weight rows (in- and out-slots)
    fixed = 2 * 2 * n * per_neuron + (2 * n * n * per_edge if path == "dense" else 0)
    return ModelSize(params, params, io_step + k * per_round, per_sample=per_sample, fixed=fixed, graph=g, rounds=k)


MODEL_SIZES: dict[str, Callable[[Run, int], ModelSize]] = {
    "rnn": _rnn_size, "lstm": _lstm_size, "cfc": _cfc_size, "transformer": _transformer_size,
    "sparse_rnn": _sparse_rnn_size, "tnd": _tnd_size,
}


def model_size(run: Run, width: int) -> ModelSize | None:
    """The closed-form size of ``run.model`` at ``width`` (None: a model without a formula)."""
    size = MODEL_SIZES.get(run.model)
    return None if size is None else size(run, int(width))


def _width_multiple(run: Run) -> int:
    builder = get_model_builder(run.model)
    hook = getattr(builder, "width_multiple", None)
    if hook is None:
        return 1
    options = {k[len("model.options."):]: v for k, v in run.values.items()
               if k.startswith("model.options.") and k.count(".") == 2}
    try:
        return max(1, int(hook(**options)))
    except (TypeError, ValueError):
        return 1


def _smallest_width(run: Run, multiple: int) -> int:
    """The first k whose width ``k * multiple`` builds (what the search starts from): a graph
    needs a few neurons (2; small_world and ring k + 1, scale_free m + 1, layered_ncp 2
    besides its sensory and motor neurons)."""
    if run.topology is None:
        return 1
    o = run.topology_options()
    s, m = run.option("num_sensory"), run.option("num_motor")
    least = {"small_world": int(o.get("k", 4)) + 1, "ring": int(o.get("k", 1)) + 1, "scale_free": int(o.get("m", 2)) + 1,
             "modular": int(o.get("blocks", 4)), "layered_ncp": (s or 1) + (m or 1) + 2}.get(run.topology, 2)
    return max(1, -(-max(least, 2) // multiple))


def predict_width(run: Run, budget: int) -> tuple[int, list[int], bool]:
    """The width the budget search (`tnd.models.budget.width_for_budget`) lands near, from the
    closed-form counts, the widths it builds on the way (doubling, then bisection), and
    whether the budget is in reach (below the count at the search's largest width)."""
    multiple = _width_multiple(run)
    count = lambda k: model_size(run, k * multiple).counted  # noqa: E731
    lo = hi = _smallest_width(run, multiple)
    tried = [hi]
    while count(hi) < budget and hi * multiple < _default(width_for_budget, "max_width", 1 << 16):
        lo, hi = hi, hi * 2
        tried.append(hi)
    if count(hi) < budget:
        return hi * multiple, [k * multiple for k in tried], False
    while hi - lo > 1:
        mid = (lo + hi) // 2
        tried.append(mid)
        if count(mid) < budget:
            lo = mid
        else:
            hi = mid
    best = min({lo, hi}, key=lambda k: abs(count(k) - budget))
    return best * multiple, [k * multiple for k in tried], True


# ----------------------------------------------------------------------------- the estimate
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
    value = run.option(width_option(run.model))
    if _is_int(value):
        return int(value)
    default = _default(get_model_builder(run.model), width_option(run.model))
    return int(default) if _is_int(default) else 64


def _times(*factors: str) -> str:
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
            build_what = (f"the {graph} on {largest.neurons:,} neurons (about {_count(largest.edges)} edges)"
                          if budget is None else
                          f"the {len(graphs)} {graph} that sizing {run.model} to param_budget={int(budget)} tries, "
                          f"of up to {largest.neurons:,} neurons (about {_count(largest.edges)} edges)")
        if not reach and size.counted * 1.2 < int(budget):
            size = None  # out of reach: the search refuses the budget itself (BudgetError), after the graphs above
    if size is not None:
        parts.append(Part("the parameters and optimizer state", size.params * PARAM_BYTES * seeds, 0.0,
                          _times(f"{_count(size.params)} parameters", f"{PARAM_BYTES} bytes", stack)))
        per_device = batch // run.devices if batch % run.devices == 0 else batch
        floats = per_device * (window * size.per_step + size.per_sample) + size.fixed
        per_step = (f"{_count(size.per_step)} floats per step, {size.rounds} rounds of {width:,} neurons"
                    if size.rounds > 1 else f"{_count(size.per_step)} floats per step")
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


# ----------------------------------------------------------------------------- available memory
@dataclasses.dataclass(frozen=True)
class Available:
    """Free memory: on the accelerator (None on a CPU) and on the host (None: unknown)."""

    device_bytes: float | None
    host_bytes: float | None
    device: str = "cpu"


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def host_available_bytes() -> float | None:
    """The host's available memory: ``MemAvailable`` (Linux), capped by this process's
    cgroup limit when one is set; ``os.sysconf`` elsewhere; None when unknown."""
    available = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = float(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            names = ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES")
            pages = next(os.sysconf(n) for n in names if n in os.sysconf_names and os.sysconf(n) > 0)
            available = float(pages) * os.sysconf("SC_PAGE_SIZE")
        except (StopIteration, ValueError, OSError, AttributeError):
            return None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < (1 << 60):
            available = min(available, float(max(limit - usage, 0)))
            break
    return available


def available_memory() -> Available:
    """Free memory on this machine: the accelerator's (``memory_stats``) and the host's."""
    import jax

    device = jax.local_devices()[0]
    free = None
    if device.platform != "cpu":
        stats = getattr(device, "memory_stats", lambda: None)() or {}
        if "bytes_limit" in stats:
            free = float(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    name = getattr(device, "device_kind", device.platform) or device.platform
    return Available(free, host_available_bytes(), name)


def local_device_count(devices: int, batch_size: int) -> int:
    """How many devices share the batch (`tnd.training.parallel.data_mesh`'s rule; 1 when it would refuse)."""
    import jax

    available = len(jax.local_devices())
    count = available if int(devices) == 0 else int(devices)
    return count if 1 <= count <= available and batch_size % count == 0 else 1


# ----------------------------------------------------------------------------- the check
def _count(x: float) -> str:
    if x < 1e9:
        return f"{x:,.0f}"
    exponent = math.floor(math.log10(x))
    return f"{x / 10 ** exponent:.1f}e{exponent}"


def _bytes(x: float) -> str:
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= size:
            return f"{x / size:.2g} {unit}" if x / size < 10 else f"{x / size:,.0f} {unit}"
    return f"{x:.0f} bytes"


def _duration(seconds: float) -> str:
    for unit, size in (("years", 3.15e7), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:.0f} s"


def _settings(run: Run, keys: list[str]) -> str:
    named = [f"{k}={run.values[k]}" for k in keys]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def _above_reference(run: Run) -> list[tuple[str, Any]]:
    """The settings above their ordinary value, each with that value."""
    out = []
    for key, value in run.values.items():
        if key not in run.references or value is None:
            continue
        ref = run.references[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ref is None or (number and isinstance(ref, (int, float)) and value > ref) or (_is_int(value) and ref == "auto"):
            out.append((key, ref))
    return out


def drivers(run: Run, measure: Callable[[Run], float], limit: float) -> list[str]:
    """The settings that drive ``measure(run)`` over ``limit``: those whose ordinary value
    (`Run.references`) lowers it most, named until putting them back brings it under the
    limit (at most three)."""
    base = measure(run)
    gains = []
    for key, ref in _above_reference(run):
        try:
            lowered = measure(run.replace(key, ref))
        except ESTIMATE_ERRORS:
            continue
        if lowered < 0.9 * base:
            gains.append((lowered, key, ref))
    gains.sort(key=lambda g: g[0])
    chosen, trial = [], run
    for _, key, ref in gains:
        chosen.append(key)
        trial = trial.replace(key, ref)
        if measure(trial) <= limit or len(chosen) == 3:
            break
    return chosen


def memory_fraction(spec: ExperimentSpec) -> float:
    """``train.memory_fraction``, or `DEFAULT_MEMORY_FRACTION` when it is null."""
    value = getattr(spec.train, "memory_fraction", None)
    fraction = DEFAULT_MEMORY_FRACTION if value is None else float(value)
    if not (math.isfinite(fraction) and fraction > 0):
        raise ResourceError(
            f"train.memory_fraction must be a positive number (null: {DEFAULT_MEMORY_FRACTION}), got {value}."
        )
    return fraction


def estimate_resources(spec: ExperimentSpec, obs_shape, num_actions: int, options: Mapping[str, Any], *,
                       seeds: int = 1, env_config: Any = None, devices: int = 1) -> Estimate:
    """The estimate (`estimate`) of ``spec`` with the model's resolved ``options``."""
    return estimate(run_of(spec, obs_shape, num_actions, options, seeds=seeds, env_config=env_config, devices=devices))


def check_resources(spec: ExperimentSpec, obs_shape, num_actions: int, options: Mapping[str, Any], *,
                    seeds: int = 1, env_config: Any = None, available: Available | None = None) -> Estimate | None:
    """Refuses (`ResourceError`, one line) a run whose graph would take over `MAX_BUILD_SECONDS`
    to build, or whose graph build or training would need more than ``train.memory_fraction``
    of the available memory (``available``: `available_memory` when None); returns the
    estimate otherwise (None: options the builders will refuse themselves, which no formula
    here can size). ``options``: the model's resolved options
    (`tnd.app.experiment.model_options`); ``seeds``: how many seeds train as one program."""
    fraction = memory_fraction(spec)
    available = available_memory() if available is None else available
    on_cpu = available.device_bytes is None
    devices = 1 if on_cpu else local_device_count(spec.train.devices, int(spec.train.batch_size))
    try:
        run = run_of(spec, obs_shape, num_actions, options, seeds=seeds, env_config=env_config, devices=devices)
        result = estimate(run)
    except ESTIMATE_ERRORS:  # options the builders will refuse with their own message (e.g. small_world k=0)
        return None
    plan = f"a run may plan on {fraction:.0%} of it (train.memory_fraction)"

    def refuse(keys: list[str], what: str) -> ResourceError:
        return ResourceError(f"{_settings(run, keys) + ': ' if keys else ''}{what}: lower "
                             f"{', '.join(keys) if keys else 'the model, batch or window size'}.")

    if result.build_seconds > MAX_BUILD_SECONDS:
        keys = drivers(run, lambda r: estimate(r).build_seconds, MAX_BUILD_SECONDS)
        raise refuse(keys, f"building {result.build_what} would take about {_duration(result.build_seconds)} and "
                           f"{_bytes(result.build_bytes)} of host memory, over the {MAX_BUILD_SECONDS:.0f} s a graph may "
                           "take (tnd.app.memory.MAX_BUILD_SECONDS)")
    host_limit = None if available.host_bytes is None else fraction * available.host_bytes
    if host_limit is not None and result.build_bytes > host_limit:
        keys = drivers(run, lambda r: estimate(r).build_bytes, host_limit)
        raise refuse(keys, f"building {result.build_what} needs about {_bytes(result.build_bytes)} of host memory; "
                           f"this machine has {_bytes(available.host_bytes)} available and {plan}")
    if on_cpu:
        checks = [(lambda e: e.total_bytes, host_limit, available.host_bytes, "memory",
                   "this machine has {} available", lambda p: p.bytes)]
    else:
        checks = [(lambda e: e.bytes_on(True), fraction * available.device_bytes, available.device_bytes,
                   f"{available.device} memory", f"this {available.device} has {{}} free", lambda p: p.device_bytes),
                  (lambda e: e.bytes_on(False), host_limit, available.host_bytes, "host memory",
                   "this machine has {} available", lambda p: p.host_bytes)]
    for share, limit, free, memory, has, part_bytes in checks:
        if limit is None or share(result) <= limit:
            continue
        keys = drivers(run, lambda r, share=share: share(estimate(r)), limit)
        top = max(result.parts, key=part_bytes)
        verb = "need" if len(keys) > 1 else "needs"
        raise ResourceError(
            f"{_settings(run, keys) + ' ' + verb if keys else 'This run needs'} about {_bytes(share(result))} of {memory}, "
            f"{_bytes(part_bytes(top))} of it for {top.what} ({top.formula}); {has.format(_bytes(free))} and {plan}: "
            f"lower {', '.join(keys) if keys else 'the model, batch or window size'}."
        )
    return result


# Host bytes per evaluated game besides the tally fields: its seed (uint32 state, int64 seed, int32 copy).
SEED_BYTES_PER_GAME = 16
# Host bytes per game and tally field: the int32 counts read back, their int64 tally, the concatenation.
TALLY_BYTES_PER_FIELD = 20


def game_bytes(env: EnvDefinition) -> int:
    """Host bytes one evaluated game needs until its metrics are pooled (seed and tally)."""
    return SEED_BYTES_PER_GAME + TALLY_BYTES_PER_FIELD * len(env.tally.field_names())


def check_games_fit(env: EnvDefinition, num_games: int, setting: str = "eval.num_games") -> None:
    """Refuses (`ResourceError`, one line naming ``setting`` and the estimate) an evaluation
    whose per-game arrays would take more than the share of the host's available memory a
    run may plan on (`tnd.app.memory`: ``DEFAULT_MEMORY_FRACTION`` of ``host_available_bytes``),
    before any of them is allocated. The games themselves are played in bounded batches
    (`tnd.envs.jax_play`), so only these per-game arrays grow with ``num_games``."""
    per_game, available = game_bytes(env), host_available_bytes()
    share = DEFAULT_MEMORY_FRACTION
    if not available or int(num_games) * per_game <= share * available:
        return
    raise ResourceError(
        f"{setting}={int(num_games):,} would need about {int(num_games) * per_game / 2**30:,.1f} GiB of memory "
        f"({per_game} bytes per game for its seed and tally), more than {share:.0%} of the "
        f"{available / 2**30:.1f} GiB available: set {setting} to at most {int(share * available) // per_game:,} "
        "(or evaluate in several runs)."
    )
