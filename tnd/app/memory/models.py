"""Each model family's size in closed form (`model_size`): its stored and counted parameters
and the floats one training step keeps per sample and time step, per sample and window, and
once per step; and the width a parameter budget's search lands on (`predict_width`).

The counts equal the built models' exactly (``tests/test_memory_estimate.py``); the
activation floats are what the backward pass keeps (see `tnd.app.memory`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable

from tnd.app.memory.graphs import GraphSize, graph_size
from tnd.app.memory.settings import Run, is_int, option_default
from tnd.models.budget import width_for_budget
from tnd.models.registry import get_model_builder


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
    if len(obs) in (2, 3):  # a frame, or k stacked frames (the conv's input channels)
        (c, height, width), f = (1, *obs) if len(obs) == 2 else obs, features
        h1, w1 = (height - 8) // 4 + 1, (width - 8) // 4 + 1
        h2, w2 = (h1 - 4) // 2 + 1, (w1 - 4) // 2 + 1
        params = 8 * 8 * c * 16 + 16 + 4 * 4 * 16 * 32 + 32 + max(h2 * w2, 1) * 32 * f + f
        per_step = c * height * width + 2 * 16 * h1 * w1 + 2 * 32 * h2 * w2 + 2 * f
    else:
        d = int(math.prod(obs)) if obs else 1
        params = d * features + features + features * features + features
        per_step = d + 4 * features
    return params + head, per_step + 2 * core_out + 4 * a + 2


def _rnn_size(run: Run, width: int) -> ModelSize:
    """The vanilla RNN at ``width`` hidden units."""
    f, h = int(run.option("encoder_features", 32)), width
    io_params, io_step = _io(run, f, h)
    core = f * h + h * h + h
    return ModelSize(io_params + core, io_params + core, io_step + 3 * h)


def _lstm_size(run: Run, width: int) -> ModelSize:
    """The LSTM at ``width`` hidden units."""
    f, h = int(run.option("encoder_features", 32)), width
    io_params, io_step = _io(run, f, h)
    core = 4 * (f * h + h * h + h)
    return ModelSize(io_params + core, io_params + core, io_step + 12 * h)


def _graph(run: Run, neurons: int) -> GraphSize | None:
    """The run's topology on ``neurons`` neurons (None: a model without one)."""
    if run.topology is None:
        return None
    return graph_size(run.topology, neurons, run.topology_options(),
                      num_sensory=run.option("num_sensory"), num_motor=run.option("num_motor"))


def _cfc_size(run: Run, width: int) -> ModelSize:
    """The CfC at ``width`` units: on its graph (wired) or with its backbone MLP."""
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
    """The Transformer at model width ``width``, with its key/value cache."""
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
    """The sparse RNN on its graph of ``width`` neurons (a dense kernel times the mask)."""
    f, n = int(run.option("encoder_features", 32)), width
    g = _graph(run, n)
    s, m = (g.sensory, g.motor) if g else (max(1, n // 8),) * 2
    edges = g.edges if g else 4 * n
    io_params, io_step = _io(run, f, m)
    stored = io_params + f * s + n * n + n
    counted = io_params + f * s + edges + n
    return ModelSize(stored, counted, io_step + 3 * n, fixed=2 * n * n, graph=g)


def _tnd_size(run: Run, width: int) -> ModelSize:
    """TND on its graph of ``width`` neurons: K rounds of ``[N, d]`` per step, by dynamics, interaction and path."""
    f, n = int(run.option("encoder_features", 32)), width
    d = int(run.option("state_dim", 4))
    g = _graph(run, n)
    s, m = (g.sensory, g.motor) if g else (max(1, n // 8),) * 2
    edges, fan_in = (g.edges, g.fan_in) if g else (4.0 * n, 4.0)
    s_in = s if run.option("input_neurons", "sensory") == "sensory" else n
    r = m if run.option("readout", "motor") == "motor" else n
    distance = 0 if (s_in == n or r == n) else (g.distance if g else 1)
    rounds = run.option("inner_rounds", "auto")
    k = distance + 1 if not is_int(rounds) else int(rounds)
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
    """The model's width step (its builder's ``width_multiple`` hook; 1 without one)."""
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
    while count(hi) < budget and hi * multiple < option_default(width_for_budget, "max_width", 1 << 16):
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
