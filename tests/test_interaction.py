"""I: every interaction operator gives the same values and gradients on both paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnd.graph import build_topology
from tnd.interaction import (
    interaction_names,
    InteractionError,
    aggregate,
    aggregate_transpose,
    choose_path,
    make_interaction,
    neighbour_lists,
    slot_dot,
    sparse_cost_ratio,
)

N, B, D = 30, 2, 3


@pytest.fixture(scope="module")
def graph():
    return build_topology("erdos_renyi", N, seed=0, p=0.2)


def _values_and_grads(op, path, h):
    graphdef, params, rest = nnx.split(op, nnx.Param, ...)

    def loss(params, h):
        m = nnx.merge(graphdef, params, rest)
        out = m.messages(m.prepare(path), h)
        return jnp.sum(jnp.sin(out) * jnp.arange(out.size).reshape(out.shape) / out.size)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, h)


@pytest.mark.parametrize("edge_gate", [False, True])
@pytest.mark.parametrize("kind", interaction_names())
def test_sparse_path_equals_dense_path(graph, kind, edge_gate):
    op = make_interaction(kind, graph, D, rngs=nnx.Rngs(1), edge_gate=edge_gate)
    if edge_gate:  # gates away from their initial constant so they matter
        op.gate.logits[...] = jax.random.normal(jax.random.key(3), op.gate.logits.shape)
    h = jax.random.normal(jax.random.key(2), (N, B, D))
    (vs, (gps, ghs)), (vd, (gpd, ghd)) = _values_and_grads(op, "sparse", h), _values_and_grads(op, "dense", h)
    np.testing.assert_allclose(vs, vd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ghs, ghd, rtol=1e-4, atol=1e-5)
    for (path, a), (_, b) in zip(nnx.to_flat_state(gps), nnx.to_flat_state(gpd)):
        np.testing.assert_allclose(a[...], b[...], rtol=1e-4, atol=1e-5, err_msg=str(path))
    assert float(jnp.abs(ghs).sum()) > 0


@pytest.mark.parametrize("kind", interaction_names())
def test_messages_match_an_edge_list_reference(graph, kind):
    """Both paths equal sum_{e: r_e = i} w_e * phi(h[s_e]) computed edge by edge."""
    op = make_interaction(kind, graph, D, rngs=nnx.Rngs(1))
    h = jax.random.normal(jax.random.key(2), (N, B, D))
    w = op.edge_weights()  # [E, 1, 1|D]
    if kind == "plastic":
        q, k = op._qk(h)
        logits = jnp.sum(q[graph.receivers] * k[graph.senders], -1)[..., None]  # [E, B, 1]
        w = w * jax.nn.sigmoid(logits + op.bias[...])
    reference = jax.ops.segment_sum(w * jnp.tanh(h)[graph.senders], graph.receivers, N)
    for path in ("sparse", "dense"):
        np.testing.assert_allclose(op.messages(op.prepare(path), h), reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("wshape", [(1, 1), (1, D), (B, 1)])
def test_kernels_and_their_gradients_match_segment_sum(graph, wshape):
    nl = neighbour_lists(graph, chunk=4)
    rng = np.random.default_rng(0)
    x, y = (jnp.asarray(rng.normal(size=(N, B, D)), jnp.float32) for _ in range(2))
    we = jnp.asarray(rng.normal(size=(graph.num_edges,) + wshape), jnp.float32)
    s, r = graph.senders, graph.receivers
    axes = tuple(i + 1 for i, (a, b) in enumerate(zip((B, D), wshape)) if b == 1 and a != 1)

    def reference(x, we, y):
        m = jax.ops.segment_sum(we * x[s], r, N)
        t = jax.ops.segment_sum(we * y[r], s, N)
        dots = jnp.sum(y[r] * x[s], axes, keepdims=True)
        return jnp.sum(jnp.sin(m) * y) + jnp.sum(jnp.cos(t) * x) + jnp.sum(jnp.cos(dots) * we)

    def kernels(x, we, y):
        w = nl.to_slots(we)
        m, t = aggregate(nl, x, w), aggregate_transpose(nl, y, w)
        dots = slot_dot(nl, y, x, wshape)
        return jnp.sum(jnp.sin(m) * y) + jnp.sum(jnp.cos(t) * x) + jnp.sum(jnp.cos(dots) * w)

    ref = jax.value_and_grad(reference, argnums=(0, 1, 2))(x, we, y)
    got = jax.jit(jax.value_and_grad(kernels, argnums=(0, 1, 2)))(x, we, y)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-5)
    for a, b in zip(got[1], ref[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_neighbour_lists_cover_every_edge_once(graph):
    nl = neighbour_lists(graph, chunk=4)
    assert nl.fan_in % nl.chunk == 0 and nl.fan_in >= graph.in_degree().max()
    real = nl.in_index < N
    pairs = sorted(zip(nl.in_index[real].tolist(), np.nonzero(real)[1].tolist()))
    assert pairs == sorted(zip(graph.senders.tolist(), graph.receivers.tolist()))
    assert sorted(nl.in_edge[real].tolist()) == list(range(graph.num_edges))


def test_edge_gate_penalty_and_kept_edges(graph):
    op = make_interaction("scalar", graph, D, rngs=nnx.Rngs(0), edge_gate=True, gate_penalty=0.1)
    assert op.kept_edges().all()
    logits = np.full(graph.num_edges, 4.0, np.float32)
    logits[:5] = -4.0
    op.gate.logits[...] = jnp.asarray(logits)
    assert op.kept_edges().sum() == graph.num_edges - 5
    expected = 0.1 * jax.nn.sigmoid(jnp.asarray(logits)).mean()
    np.testing.assert_allclose(op.regularization(), expected, rtol=1e-6)
    grad = jax.grad(lambda l: 0.1 * jax.nn.sigmoid(l).mean())(op.gate.logits[...])
    assert (grad > 0).all()  # the penalty pushes every gate down
    no_gate = make_interaction("scalar", graph, D, rngs=nnx.Rngs(0))
    assert float(no_gate.regularization()) == 0.0 and no_gate.kept_edges().all()
    closed = make_interaction("scalar", graph, D, rngs=nnx.Rngs(0), edge_gate=True, gate_init_logit=-2.0)
    np.testing.assert_allclose(closed.gate.gates(), jax.nn.sigmoid(-2.0), rtol=1e-6)
    assert not closed.kept_edges().any()  # every gate starts below 0.5


def test_auto_path_rule():
    small = build_topology("erdos_renyi", 64, seed=0, density=0.05)
    assert choose_path(small) == "dense"
    big_sparse = build_topology("erdos_renyi", 2048, seed=0, density=0.01)
    assert choose_path(big_sparse) == "sparse"
    big_dense = build_topology("erdos_renyi", 1024, seed=0, density=0.25)
    assert choose_path(big_dense) == "dense"
    assert choose_path(small, "sparse") == "sparse" and choose_path(big_sparse, "dense") == "dense"
    # wider states favour the dense matmul: K = 24 at N = 256 is sparse at d = 4, dense at d = 16
    middle = build_topology("erdos_renyi", 256, seed=0, density=0.05)
    assert neighbour_lists(middle, 4).fan_in == 24
    assert choose_path(middle, state_dim=4) == "sparse" and choose_path(middle, state_dim=16) == "dense"
    assert sparse_cost_ratio(1) == sparse_cost_ratio(4) == 8.0 and sparse_cost_ratio(64) == sparse_cost_ratio(16)
    assert sparse_cost_ratio(4) < sparse_cost_ratio(10) < sparse_cost_ratio(16)


def test_bad_options_raise_one_clear_error(graph):
    with pytest.raises(InteractionError, match="Unknown interaction 'foo'. Valid values: scalar, vector"):
        make_interaction("foo", graph, D, rngs=nnx.Rngs(0))
    with pytest.raises(InteractionError, match="Unknown path 'gpu'. Valid values: auto, sparse, dense"):
        make_interaction("scalar", graph, D, rngs=nnx.Rngs(0), path="gpu")
    with pytest.raises(InteractionError, match="Unknown phi"):
        make_interaction("scalar", graph, D, rngs=nnx.Rngs(0), phi="swishy")
    with pytest.raises(InteractionError, match="Bad option for interaction 'scalar'"):
        make_interaction("scalar", graph, D, rngs=nnx.Rngs(0), rank=3)
