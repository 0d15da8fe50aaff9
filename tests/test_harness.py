"""The harness contract, checked for EVERY registered model (`model_names()`), so a newly
registered model (``tnd``, or a user's own) is covered automatically:

* the sequence call equals T calls of `step` (the `compile_step` policy step), with and
  without reset masks (random resets mid-window), from the initial and from a non-initial
  carry (so chunked sequence calls continue correctly);
* gradients of a loss w.r.t. every parameter are finite (and not all zero);
* object (``(D,)``) and pixel (``(H, W)``) observations.

Graph-based baselines are also run on an explicit small `NeuronGraph`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from flax import nnx

import tnd.models as models
from tnd.graph import NeuronGraph
from tnd.models import build_model, compile_step, model_names, reset_carry, width_option

NUM_ACTIONS = 3
WIDTH = 16


@pytest.fixture(autouse=True)
def full_precision_matmuls():
    """Exact float32 matmuls (GPUs default to TF32, which would loosen every comparison)."""
    with jax.default_matmul_precision("highest"):
        yield


def small_graph() -> NeuronGraph:
    """8 neurons: sensory 0,1 -> inter 2..4 (recurrent ring) -> motor 5..7, some self-loops."""
    g = nx.DiGraph()
    g.add_edges_from([(0, 2), (0, 3), (1, 3), (1, 4), (2, 3), (3, 4), (4, 2), (2, 5), (3, 6), (4, 7), (5, 5), (7, 1)])
    g.add_nodes_from(range(8))
    return NeuronGraph.from_networkx(g, sensory=[0, 1], motor=[5, 6, 7], name="small")


def cases() -> list:
    named = [pytest.param(name, None, id=name) for name in model_names()]
    return named + [
        pytest.param("sparse_rnn", {"graph": small_graph()}, id="sparse_rnn-graph"),
        pytest.param("cfc", {"graph": small_graph()}, id="cfc-graph"),
        pytest.param("cfc", {"mode": "no_gate", "backbone_layers": 2, "backbone_units": 8}, id="cfc-no_gate"),
        pytest.param("cfc", {"mode": "pure", "timespan": 0.5}, id="cfc-pure"),
        pytest.param("transformer", {"window": 3, "num_layers": 1}, id="transformer-w3"),
    ]


def make(name: str, options: dict | None, obs_shape=(4,), seed: int = 0):
    options = dict(options or {})
    if "graph" not in options:
        options[width_option(name)] = WIDTH
    return build_model(name, obs_shape=obs_shape, num_actions=NUM_ACTIONS, rngs=nnx.Rngs(seed), **options)


def compiled(model):
    """``(seq, step)``: the sequence call and `compile_step`'s step, each jit-compiled once."""
    step_fn, state = compile_step(model)
    graphdef, _ = nnx.split(model)
    seq = jax.jit(lambda state, x, resets, carry: nnx.merge(graphdef, state)(x, resets, carry))
    return (lambda x, resets, carry: seq(state, x, resets, carry)), (lambda carry, x_t: step_fn(state, carry, x_t))


def step_loop(model, step, x, resets, carry):
    """The reference: T calls of `step`, resetting the carry where ``resets[:, t]``."""
    initial = model.initial_state(x.shape[0])
    outputs = []
    for t in range(x.shape[1]):
        carry = reset_carry(carry, initial, resets[:, t])
        carry, logits = step(carry, x[:, t])
        outputs.append(logits)
    return carry, jnp.stack(outputs, axis=1)


def assert_tree_close(a, b, atol=2e-5):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u, np.float32), np.asarray(v, np.float32), atol=atol, rtol=1e-4)


def inputs(obs_shape, batch=3, time=9, seed=1, reset_prob=0.0):
    kx, kr = jax.random.split(jax.random.key(seed))
    x = jax.random.uniform(kx, (batch, time) + tuple(obs_shape))
    resets = jax.random.bernoulli(kr, reset_prob, (batch, time))
    return x, resets


def check_sequence_equals_steps(model, obs_shape, batch=3, time=9):
    seq, step = compiled(model)
    initial = model.initial_state(batch)
    no_resets = jnp.zeros((batch, time), bool)
    x, resets = inputs(obs_shape, batch, time, reset_prob=0.3, seed=2)
    # 1. From the initial state, no resets; also the plain call without resets/carry.
    carry, logits = seq(x, no_resets, initial)
    assert logits.shape == (batch, time, NUM_ACTIONS)
    ref_carry, ref_logits = step_loop(model, step, x, no_resets, initial)
    assert_tree_close(logits, ref_logits)
    assert_tree_close(carry, ref_carry)
    # 2. Continued from a non-initial carry (the end of another sequence), with random
    #    resets, one mid-window reset in every row but the first, which has none.
    warm, _ = seq(inputs(obs_shape, batch, time, seed=3)[0], no_resets, initial)
    resets = resets.at[1:, time // 2].set(True).at[0].set(False)
    carry, logits = seq(x, resets, warm)
    ref_carry, ref_logits = step_loop(model, step, x, resets, warm)
    assert_tree_close(logits, ref_logits)
    assert_tree_close(carry, ref_carry)
    # 3. The resets and the warm carry really matter.
    _, no_reset_logits = seq(x, no_resets, warm)
    assert not np.allclose(no_reset_logits[1:, time // 2 :], logits[1:, time // 2 :], atol=1e-6)
    assert not np.allclose(no_reset_logits[:, 0], ref_logits_from(model, step, x, initial)[:, 0], atol=1e-6)


def ref_logits_from(model, step, x, carry):
    return step_loop(model, step, x[:, :1], jnp.zeros(x.shape[:1] + (1,), bool), carry)[1]


@pytest.mark.parametrize("name, options", cases())
def test_sequence_equals_steps(name, options):
    check_sequence_equals_steps(make(name, options), (4,))


@pytest.mark.parametrize("name, options", cases())
def test_gradients_finite(name, options):
    model = make(name, options)
    x, resets = inputs((4,), reset_prob=0.2, seed=5)
    labels = jax.random.randint(jax.random.key(6), (3, 9), 0, NUM_ACTIONS)

    def loss_fn(m):
        _, logits = m(x, resets)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[..., None], -1))

    grads = nnx.jit(nnx.grad(loss_fn))(model)
    leaves = jax.tree.leaves(grads)
    assert leaves
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert sum(float(jnp.sum(jnp.abs(g))) for g in leaves) > 0


@pytest.mark.parametrize("name", model_names())
def test_pixel_observations(name):
    check_sequence_equals_steps(make(name, None, obs_shape=(24, 24)), (24, 24), batch=2, time=4)


def test_default_arguments_of_the_sequence_call():
    model = make("rnn", None)
    x, _ = inputs((4,), time=3)
    _, logits = model(x)
    _, ref = model(x, jnp.zeros((3, 3), bool), model.initial_state(3))
    assert_tree_close(logits, ref)


def test_registry_covers_the_baselines():
    for name in ("rnn", "sparse_rnn", "lstm", "cfc", "transformer"):
        assert name in models.model_names()


def test_unknown_model_lists_valid_names():
    with pytest.raises(models.UnknownModelError, match="Valid models: .*lstm.*rnn"):
        build_model("gru9000", obs_shape=(4,), num_actions=3, rngs=nnx.Rngs(0))


def test_user_registered_model_is_built():
    @models.register_model("test_user_rnn", width_option="hidden_size")
    def _build(*, obs_shape, num_actions, rngs, hidden_size=8, encoder_features=32):
        return build_model("rnn", obs_shape=obs_shape, num_actions=num_actions, rngs=rngs, hidden_size=hidden_size)

    try:
        assert "test_user_rnn" in model_names()
        model = build_model("test_user_rnn", obs_shape=(4,), num_actions=3, rngs=nnx.Rngs(0), hidden_size=5)
        assert model.hidden_size == 5
    finally:
        from tnd.models import registry

        registry._MODELS.pop("test_user_rnn", None)


@pytest.mark.parametrize("name", ["lstm", "tnd"])
def test_stacked_frames_train_through_the_conv_encoder(name):
    """Atari frames stacked k = 4 deep (``[B, T, 4, H, W]``): the conv takes them as channels, and
    the sequence call equals the steps."""
    model = build_model(name, obs_shape=(4, 24, 24), num_actions=3, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(1), (2, 5, 4, 24, 24))
    _, logits = model(x)
    carry = model.initial_state(2)
    step_logits = []
    for t in range(5):
        carry, out = model.step(carry, x[:, t])
        step_logits.append(out)
    assert logits.shape == (2, 5, 3)
    np.testing.assert_allclose(np.asarray(logits), np.stack(step_logits, axis=1), rtol=1e-5, atol=1e-5)
