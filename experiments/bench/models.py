"""`tnd-bench --suite models`: every registered model at common parameter budgets, plus the
JAX CfC against the reference PyTorch ncps CfC.

Per registered model (`model_names()`: the baselines and ``tnd``, and any user model) and
budget (`build_for_budget`, effective parameter counts, object observations ``(4,)``):

* ``train_timesteps_per_s``: one jit-compiled forward + backward of the cross-entropy over a
  ``[B, T]`` window (``--models-batch``, ``--models-seq-len``), ``B*T / step time``;
* ``step_us``: one batched policy step (``compile_step``: ``jax.jit`` over split state,
  batch ``--models-step-batch``), microseconds per call.

Then ``<model>/lstm`` ratio rows at each budget (``throughput_vs_lstm``); ``tnd@table`` and
``lstm@table``: TND and the LSTM exactly as the table builds them (the trainer's config
composed with ``--models-table-overrides``, default ``experiment=pong_table``: same graph,
options, parameter budget and observation shape), their ratio (``step_ratio``: TND's
training step over the LSTM's) beside the arithmetic floor (`recurrent_macs`: the
multiply-adds per sample and time step of TND's graph product alone, ``E·d·K``, and of its
whole recurrent core, each over the LSTM's), and ``state_floor@table``:
the cheapest recurrence with that TND's state shape, input and readout (`StateFloor`: no
interaction, no learned dynamics), an upper bound on any TND of that size; and the CfC
comparison at identical sizes (B = 64, T = 128, input 32, hidden 128, ncps's default
backbone of 128 lecun_tanh units, forward + backward of a sum over all outputs):
``ncps.torch.CfC`` (when torch/ncps are installed) beside a ``lax.scan`` of our `CfCCell`.
Figures are medians over ``--repeats`` after a warm-up.

    tnd-bench --suite models                 # budgets 20k and 100k, ~1-2 min on 2 cores
    tnd-bench --suite models --models-budgets 20000 --models-names lstm,tnd --json
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
from flax import nnx

from experiments.bench.timing import median_seconds, training_call
from tnd.models import build_model, compile_step, effective_param_count, model_names, width_option
from tnd.models.base import SequenceModel
from tnd.models.budget import width_for_budget
from tnd.models.cfc import CfCCell
from tnd.models.encoders import make_io

OBS_SHAPE, NUM_ACTIONS = (4,), 3


def add_arguments(group) -> None:
    group.add_argument("--models-budgets", type=str, default="20000,100000", help="comma-separated parameter budgets")
    group.add_argument("--models-names", type=str, default=None, help="comma-separated subset of registered models")
    group.add_argument("--models-batch", type=int, default=32, help="training batch B")
    group.add_argument("--models-seq-len", type=int, default=64, help="training window T")
    group.add_argument("--models-step-batch", type=int, default=16, help="batch of one policy step")
    group.add_argument("--models-no-table", action="store_true",
                       help="skip TND and the LSTM as the table builds them")
    group.add_argument("--models-table-overrides", type=str, default="experiment=pong_table",
                       help="space-separated trainer overrides that define the table's models")
    group.add_argument("--models-no-cfc", action="store_true", help="skip the JAX vs ncps CfC comparison")
    group.add_argument("--models-cfc-size", type=str, default="64,128,32,128",
                       help="B,T,input,hidden of the CfC comparison")


class StateFloor(SequenceModel):
    """A throughput ceiling for TND on ``graph``: the same state, input and readout, nothing else.

    Carry ``[B, N, d]``; per step ``h <- tanh(0.5 h + u)`` with ``u`` the features projected
    onto the sensory neurons (as TND does) and the motor neurons read out. No messages and
    no learned dynamics, so any TND on this graph and d does at least this much work.
    """

    def __init__(self, graph, state_dim: int, *, obs_shape, num_actions: int, rngs: nnx.Rngs, features: int = 32):
        self.num_neurons, self.state_dim = graph.num_neurons, state_dim
        self.sensory, self.motor = graph.sensory, graph.motor
        self.input = nnx.Linear(features, graph.sensory.size * state_dim, rngs=rngs)
        self.encoder, self.head = make_io(obs_shape, features, graph.motor.size * state_dim, num_actions, rngs=rngs)

    def initial_state(self, batch_size: int):
        return jnp.zeros((batch_size, self.num_neurons, self.state_dim))

    def core_step(self, carry, features):
        u = self.input(features).reshape(features.shape[0], -1, self.state_dim)
        h = jnp.tanh(0.5 * carry + jnp.zeros_like(carry).at[:, self.sensory].set(u))
        return h, h[:, self.motor].reshape(h.shape[0], -1)


def time_training(model, batch: int, seq_len: int, repeats: int, obs_shape=OBS_SHAPE) -> float:
    """Seconds per jit-compiled forward+backward of the cross-entropy over ``[B, T]``."""
    call = training_call(model, batch, seq_len, obs_shape, NUM_ACTIONS, reset_probability=0.01)
    return median_seconds({"train": call}, repeats, warmup=2)["train"]


def time_policy_step(model, batch: int, repeats: int, obs_shape=OBS_SHAPE) -> float:
    """Seconds per batched policy step through `compile_step`."""
    step_fn, state = compile_step(model)
    carry = model.initial_state(batch)
    x_t = jnp.zeros((batch,) + tuple(obs_shape))
    calls = 50
    step_fn(state, carry, x_t)

    def many():
        c = carry
        for _ in range(calls):
            c, logits = step_fn(state, c, x_t)
        return logits

    return median_seconds({"step": many}, repeats)["step"] / calls


def _jax_cfc_seconds(b: int, t: int, i: int, h: int, repeats: int) -> float:
    cell = CfCCell(i, h, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(cell)
    x = jax.random.normal(jax.random.key(0), (t, b, i))

    @jax.jit
    def fwd_bwd(params, x):
        def loss_fn(p, x):
            cell = nnx.merge(graphdef, p)
            _, outs = jax.lax.scan(lambda hh, x_t: (cell(hh, x_t),) * 2, jnp.zeros((b, h)), x)
            return outs.sum()

        return jax.value_and_grad(loss_fn, argnums=(0, 1))(params, x)

    return median_seconds({"jax": lambda: fwd_bwd(params, x)}, repeats, warmup=2)["jax"]


def _torch_cfc_seconds(b: int, t: int, i: int, h: int, repeats: int) -> float | None:
    try:
        import torch
        from ncps.torch import CfC
    except ImportError:
        return None
    torch.manual_seed(0)
    rnn = CfC(i, h)
    x = torch.randn(b, t, i, requires_grad=True)

    def fwd_bwd():
        rnn.zero_grad()
        out, _ = rnn(x)
        out.sum().backward()

    return median_seconds({"torch": fwd_bwd}, repeats)["torch"]


def _measure(name: str, model, width: str, count: int, args, budget, obs_shape=OBS_SHAPE) -> dict:
    train_s = time_training(model, args.models_batch, args.models_seq_len, args.repeats, obs_shape)
    step_s = time_policy_step(model, args.models_step_batch, args.repeats, obs_shape)
    return {
        "model": name, "budget": budget, "params": count, "width": width,
        "batch": args.models_batch, "seq_len": args.models_seq_len,
        "train_ms": 1e3 * train_s, "train_timesteps_per_s": args.models_batch * args.models_seq_len / train_s,
        "step_batch": args.models_step_batch, "step_us": 1e6 * step_s, "device": jax.devices()[0].device_kind,
    }


def _at_budget(name: str, budget: int, args) -> dict:
    width, count = width_for_budget(name, budget, obs_shape=OBS_SHAPE, num_actions=NUM_ACTIONS)
    option = width_option(name)
    model = build_model(name, obs_shape=OBS_SHAPE, num_actions=NUM_ACTIONS, rngs=nnx.Rngs(0), **{option: width})
    return _measure(name, model, f"{option}={width}", count, args, budget)


def _table_spec(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from experiments import schema  # noqa: F401  (registers the structured configs)
    from experiments.common import CONF_DIR, to_object

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return to_object(compose(config_name="tnd_train", overrides=overrides))


def table_model(overrides: list[str]):
    """``(model, options, num_params, obs_shape)`` built exactly as ``tnd-train <overrides>`` builds it (the env's
    observation shape and action count)."""
    return table_models(overrides, [None])[0]


def table_models(overrides: list[str], seeds: list[int | None]):
    """`table_model` for each seed (None: the overrides' own), built as ``tnd-train seeds=[...]``
    builds a stack: a model that holds its graph as data (TND) gets each seed's own graph,
    padded to one program shape (`tnd.app.align_programs`)."""
    import dataclasses

    from tnd.app.experiment import align_programs, set_up

    base = _table_spec(overrides)
    specs = [base if seed is None else dataclasses.replace(base, seed=int(seed)) for seed in seeds]
    prepared = align_programs(specs, [set_up(spec) for spec in specs])
    return [(p.model, p.options, p.num_params, p.obs_shape) for p in prepared]


def recurrent_macs(model) -> dict[str, int]:
    """Multiply-adds per sample and time step of a model's recurrent core (encoder and head
    excluded): TND's graph product ``E·d·K`` (``graph``) and everything per step (``core``:
    K rounds of messages and the per-neuron channel map, plus the input projection); an
    LSTM's ``4H(F + H)``."""
    core = getattr(model, "core", None)
    if core is not None and hasattr(core, "arrays"):
        e, n, d, k = core.arrays.num_edges, core.num_neurons, core.state_dim, core.rounds
        inputs, features = core.input_kernel.shape[1], core.input_kernel.shape[0]
        graph = e * d * k
        channel_map = n * d * 2 * d * k  # leaky: [m; h] (2d channels) -> d, per neuron and round
        return {"graph": graph, "core": graph + channel_map + features * inputs * d}
    hidden, features = model.hidden_size, model.cell.in_features
    return {"graph": 0, "core": 4 * hidden * (features + hidden)}


def _table_models(args) -> Iterator[dict]:
    """TND and the LSTM as the table builds them, their ratio, and TND's state floor."""
    overrides = args.models_table_overrides.split()
    rows, models = {}, {}
    for name in ("tnd", "lstm"):
        model, options, count, obs_shape = table_model(overrides + [f"model={name}"])
        models[name] = model
        width = f"{width_option(name)}={options[width_option(name)]}"
        rows[name] = _measure(f"{name}@table", model, width, count, args, "table", obs_shape)
        yield rows[name]
        if name == "tnd":
            floor = StateFloor(model.graph, model.core.state_dim, obs_shape=obs_shape, num_actions=NUM_ACTIONS,
                               rngs=nnx.Rngs(0))
            rows["floor"] = _measure("state_floor@table", floor, rows[name]["width"], effective_param_count(floor),
                                     args, "table", obs_shape)
            yield rows["floor"]
    tnd_macs, lstm_macs = recurrent_macs(models["tnd"]), recurrent_macs(models["lstm"])
    for name, label in (("tnd", "tnd@table"), ("floor", "state_floor@table")):
        row = {
            "model": f"{label}/lstm", "budget": "table",
            "throughput_vs_lstm": rows[name]["train_timesteps_per_s"] / rows["lstm"]["train_timesteps_per_s"],
            "step_ratio": rows[name]["train_ms"] / rows["lstm"]["train_ms"],
        }
        if name == "tnd":
            row.update(graph_macs_ratio=tnd_macs["graph"] / lstm_macs["core"],
                       core_macs_ratio=tnd_macs["core"] / lstm_macs["core"],
                       tnd_core_macs=tnd_macs["core"], lstm_core_macs=lstm_macs["core"])
        yield row


def run(args) -> Iterator[dict]:
    budgets = [int(v) for v in args.models_budgets.split(",")]
    names = model_names() if not args.models_names else [n.strip() for n in args.models_names.split(",")]
    for budget in budgets:
        rows = {}
        for name in names:
            rows[name] = _at_budget(name, budget, args)
            yield rows[name]
        if "lstm" in rows:
            for name in names:
                if name != "lstm":
                    yield {
                        "model": f"{name}/lstm", "budget": budget,
                        "throughput_vs_lstm": rows[name]["train_timesteps_per_s"]
                        / rows["lstm"]["train_timesteps_per_s"],
                    }
    if "tnd" in names and "lstm" in names and not args.models_no_table:
        yield from _table_models(args)
    if args.models_no_cfc:
        return
    b, t, i, h = (int(v) for v in args.models_cfc_size.split(","))
    jax_s = _jax_cfc_seconds(b, t, i, h, args.repeats)
    row = {"model": "cfc_jax_vs_ncps_torch", "batch": b, "seq_len": t, "input": i, "hidden": h,
           "jax_ms": 1e3 * jax_s, "jax_timesteps_per_s": b * t / jax_s}
    torch_s = _torch_cfc_seconds(b, t, i, h, args.repeats)
    if torch_s is None:
        row["torch"] = "not installed"
    else:
        row.update(torch_ms=1e3 * torch_s, torch_timesteps_per_s=b * t / torch_s, jax_speedup=torch_s / jax_s)
    yield row
