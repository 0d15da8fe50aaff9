"""Baseline-specific checks: hand-computed parameter counts, the sparse RNN's mask, the
masked CfC's effective count, and the Transformer's window."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from flax import nnx

from tnd.graph import NeuronGraph, build_topology
from tnd.models import build_model, count_params, effective_param_count

D, F, A = 4, 8, 3  # object features, encoder features, actions
ENCODER = D * F + F + F * F + F  # MLPEncoder: Linear(D, F) + Linear(F, F), with biases


def head(core_out: int) -> int:
    return core_out * A + A  # Linear(core_out, A)


def build(name, **options):
    return build_model(name, obs_shape=(D,), num_actions=A, rngs=nnx.Rngs(0), encoder_features=F, **options)


def small_graph() -> NeuronGraph:
    g = nx.DiGraph()
    g.add_edges_from([(0, 2), (1, 3), (2, 3), (3, 2), (3, 4), (2, 5), (4, 5), (5, 5)])
    return NeuronGraph.from_networkx(g, sensory=[0, 1], motor=[4, 5], name="tiny")


def test_rnn_parameter_count():
    h = 10
    # SimpleCell: input kernel F*H (no bias) + recurrent kernel H*H + its bias H.
    assert count_params(build("rnn", hidden_size=h)) == ENCODER + (F * h + h * h + h) + head(h)


def test_lstm_parameter_count():
    h = 10
    # OptimizedLSTMCell, gates i, f, g, o fused: 4 * (F*H input kernel + H*H recurrent + H bias).
    assert count_params(build("lstm", hidden_size=h)) == ENCODER + 4 * (F * h + h * h + h) + head(h)


def test_sparse_rnn_counts_nominal_and_effective():
    graph = small_graph()
    n, s, m, e = graph.num_neurons, graph.sensory.size, graph.motor.size, graph.num_edges
    model = build("sparse_rnn", graph=graph)
    # input onto sensory F*S, dense recurrent kernel N*N (masked), bias N, head on motor neurons
    nominal = ENCODER + F * s + n * n + n + head(m)
    assert count_params(model) == nominal
    assert effective_param_count(model) == nominal - (n * n - e)


def test_sparse_rnn_respects_the_mask():
    graph = small_graph()
    model = build("sparse_rnn", graph=graph)
    adjacency = graph.adjacency()
    x = jax.random.normal(jax.random.key(0), (2, 6, D))

    def loss(m):
        return jnp.sum(m(x)[1] ** 2)

    grads = nnx.jit(nnx.grad(loss))(model)
    g = np.asarray(grads.recurrent_kernel[...])
    assert np.all(g[adjacency == 0] == 0)
    assert np.any(g[adjacency == 1] != 0)
    # Non-edge weights have no influence at all.
    forward = nnx.jit(lambda m, x: m(x)[1])
    before = forward(model, x)
    model.recurrent_kernel[...] = model.recurrent_kernel[...] + 5.0 * (1 - adjacency)
    after = forward(model, x)
    np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
    # The input reaches the sensory neurons only (zero state, zero bias: one step).
    h, _ = model.core_step(model.initial_state(2), model.encoder(x[:, 0]))
    non_sensory = np.setdiff1d(np.arange(graph.num_neurons), graph.sensory)
    assert np.all(np.asarray(h)[:, non_sensory] == 0)
    assert np.all(np.asarray(h)[:, graph.sensory] != 0)


def test_sparse_rnn_uses_the_tnd_topology():
    model = build("sparse_rnn", num_neurons=20, graph_seed=3)
    graph = build_topology("layered_ncp", 20, seed=3)
    np.testing.assert_array_equal(np.asarray(model.mask[...]), graph.adjacency())
    assert model.sensory == tuple(graph.sensory.tolist()) and model.motor == tuple(graph.motor.tolist())


def test_masked_cfc_effective_count():
    graph = small_graph()
    model = build("cfc", graph=graph)
    n = graph.num_neurons
    mask_rows = F + n
    masked = F * (n - graph.sensory.size) + (n * n - graph.num_edges)  # zeros of [inputs; adjacency]
    # ff1, ff2, time_a, time_b: Linear(F + N, N) each, no backbone.
    assert count_params(model) == ENCODER + 4 * (mask_rows * n + n) + head(graph.motor.size)
    assert effective_param_count(model) == count_params(model) - 2 * masked


def test_cfc_with_graph_rejects_a_backbone():
    with pytest.raises(ValueError, match="backbone_layers=0"):
        build("cfc", graph=small_graph(), backbone_layers=1)


def window_dependence(model, time=10):
    """``dep[t, s]``: does logits[:, t] depend on x[:, s]? (Jacobian non-zero)."""
    x = jax.random.normal(jax.random.key(1), (1, time, D))
    graphdef, state = nnx.split(model)
    jac = jax.jit(jax.jacobian(lambda x: nnx.merge(graphdef, state)(x)[1][0].sum(-1)))(x)  # [T, 1, T, D]
    return np.abs(np.asarray(jac)).sum(axis=(1, 3)) > 0


@pytest.mark.parametrize("num_layers", [1, 2])
def test_transformer_window(num_layers):
    window, time = 3, 10
    model = build("transformer", d_model=8, num_heads=2, num_layers=num_layers, window=window)
    dep = window_dependence(model, time)
    # Each layer looks W - 1 steps back, so L layers see the last L*(W-1)+1 steps.
    reach = num_layers * (window - 1) + 1
    t, s = np.meshgrid(np.arange(time), np.arange(time), indexing="ij")
    np.testing.assert_array_equal(dep, (s <= t) & (t - s < reach))
    # The carry (the bounded context) does not grow with the sequence.
    carry = jax.eval_shape(lambda x: model(x)[0], jnp.zeros((2, 17, D)))
    assert carry["cache"].shape == (2, num_layers, window - 1, 8)


def test_transformer_rejects_odd_head_size():
    with pytest.raises(ValueError, match="multiple of 2"):
        build("transformer", d_model=6, num_heads=2)
