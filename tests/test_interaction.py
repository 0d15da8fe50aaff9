"""I: every interaction operator gives the same values and gradients on both paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnd.graph import GraphArrays, GraphShape, build_topology, neighbour_arrays
from tnd.interaction import (
    interaction_names,
    InteractionError,
    aggregate,
    choose_path,
    make_interaction,
)
from tnd.layout import from_rows, to_rows

N, B, D = 30, 2, 3


@pytest.fixture(scope="module")
def graph():
    return build_topology("erdos_renyi", N, seed=0, p=0.2)


def _make(kind, graph, **options):
    return make_interaction(kind, GraphArrays(graph), D, rngs=nnx.Rngs(1), **options)


def _values_and_grads(op, path, h):
    graphdef, params, rest = nnx.split(op, nnx.Param, ...)

    def loss(params, h):
        m = nnx.merge(graphdef, params, rest)
        out = from_rows(m.messages(m.prepare(B, path), to_rows(h)), B)
        return jnp.sum(jnp.sin(out) * jnp.arange(out.size).reshape(out.shape) / out.size)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, h)


@pytest.mark.parametrize("edge_gate", [False, True])
@pytest.mark.parametrize("kind", interaction_names())
def test_sparse_path_equals_dense_path(graph, kind, edge_gate):
    op = _make(kind, graph, edge_gate=edge_gate)
    if edge_gate:  # gates away from their initial constant so they matter
        op.gate.logits[...] = jax.random.normal(jax.random.key(3), op.gate.logits.shape)
    h = jax.random.normal(jax.random.key(2), (B, N, D))
    (vs, (gps, ghs)), (vd, (gpd, ghd)) = _values_and_grads(op, "sparse", h), _values_and_grads(op, "dense", h)
    np.testing.assert_allclose(vs, vd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ghs, ghd, rtol=1e-4, atol=1e-5)
    for (path, a), (_, b) in zip(nnx.to_flat_state(gps), nnx.to_flat_state(gpd)):
        np.testing.assert_allclose(a[...], b[...], rtol=1e-4, atol=1e-5, err_msg=str(path))
    assert float(jnp.abs(ghs).sum()) > 0


@pytest.mark.parametrize("kind", interaction_names())
def test_messages_match_an_edge_list_reference(graph, kind):
    """Both paths equal sum_{e: r_e = i} w_e * phi(h[s_e]) computed edge by edge."""
    op = _make(kind, graph)
    h = jax.random.normal(jax.random.key(2), (B, N, D))
    w = op.edge_weights()[None]  # [1, E, 1|D]
    if kind == "plastic":
        q = jnp.einsum("bnd,dr->bnr", h, op.query[...]) / np.sqrt(op.rank)
        k = jnp.einsum("bnd,dr->bnr", h, op.key[...])
        logits = jnp.sum(q[:, graph.receivers] * k[:, graph.senders], -1)[..., None]  # [B, E, 1]
        w = w * jax.nn.sigmoid(logits + op.bias[...])
    msgs = w * jnp.tanh(h)[:, graph.senders]  # [B, E, D]
    reference = jax.vmap(lambda m: jax.ops.segment_sum(m, graph.receivers, N))(msgs)
    for path in ("sparse", "dense"):
        got = from_rows(op.messages(op.prepare(B, path), to_rows(h)), B)
        np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("per_channel", [False, True])
def test_kernel_and_its_gradients_match_segment_sum(graph, per_channel):
    """`aggregate` (gathers forward and backward) equals segment_sum over the edge list."""
    arrays = GraphArrays(graph)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(N, D * B)), jnp.float32)
    we = jnp.asarray(rng.normal(size=(graph.num_edges, D * B if per_channel else 1)), jnp.float32)
    s, r = graph.senders, graph.receivers

    def reference(x, we):
        return jnp.sum(jnp.sin(jax.ops.segment_sum(we * x[s], r, N)))

    def kernel(x, we):
        slots = arrays.edges_to_slots(we)
        out = arrays.slots_to_out(slots)
        m = aggregate(arrays.array("in_index"), arrays.array("out_index"), x, tuple(slots), tuple(out))
        return jnp.sum(jnp.sin(m))

    ref = jax.value_and_grad(reference, argnums=(0, 1))(x, we)
    got = jax.jit(jax.value_and_grad(kernel, argnums=(0, 1)))(x, we)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-5)
    for a, b in zip(got[1], ref[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_neighbour_lists_cover_every_edge_once(graph):
    lists = neighbour_arrays(graph, fan_in=9)
    assert lists["in_index"].shape[0] == max(9, graph.in_degree().max())
    real = lists["in_edge"] < graph.num_edges
    pairs = sorted(zip(lists["in_index"][real].tolist(), np.nonzero(real)[1].tolist()))
    assert pairs == sorted(zip(graph.senders.tolist(), graph.receivers.tolist()))
    assert sorted(lists["in_edge"][real].tolist()) == list(range(graph.num_edges))
    out_real = lists["out_slot"] < lists["in_index"].size
    assert out_real.sum() == graph.num_edges  # every edge once in the out-lists
    k, n = np.divmod(lists["out_slot"][out_real], graph.num_neurons)
    assert (lists["in_index"][k, n] == np.nonzero(out_real)[1]).all()  # an out-slot names its sender's in-slot


def test_edge_gate_penalty_and_kept_edges(graph):
    op = _make("scalar", graph, edge_gate=True, gate_penalty=0.1)
    assert op.kept_edges().all()
    logits = np.full(graph.num_edges, 4.0, np.float32)
    logits[:5] = -4.0
    op.gate.logits[...] = jnp.asarray(logits)
    assert op.kept_edges().sum() == graph.num_edges - 5
    expected = 0.1 * jax.nn.sigmoid(jnp.asarray(logits)).mean()
    np.testing.assert_allclose(op.regularization(), expected, rtol=1e-6)
    grad = jax.grad(lambda l: 0.1 * jax.nn.sigmoid(l).mean())(op.gate.logits[...])
    assert (grad > 0).all()  # the penalty pushes every gate down
    no_gate = _make("scalar", graph)
    assert float(no_gate.regularization()) == 0.0 and no_gate.kept_edges().all()
    closed = _make("scalar", graph, edge_gate=True, gate_init_logit=-2.0)
    np.testing.assert_allclose(closed.gate.gates(), jax.nn.sigmoid(-2.0), rtol=1e-6)
    assert not closed.kept_edges().any()  # every gate starts below 0.5


def test_auto_path_rule():
    sparse_graph = GraphShape.of(build_topology("small_world", 103, seed=0, k=4, p=0.1))
    assert choose_path(sparse_graph) == "sparse"  # fan-in 6 of 103 neurons
    dense_graph = GraphShape.of(build_topology("erdos_renyi", 64, seed=0, density=0.3))
    assert choose_path(dense_graph) == "dense"
    # the break-even fan-in grows like sqrt(N): 23 of 256 is sparse, 81 of 1024 is dense (measured)
    assert choose_path(GraphShape(256, 0, 1, 1, 23, 23)) == "sparse"
    assert choose_path(GraphShape(1024, 0, 1, 1, 81, 81)) == "dense"
    assert choose_path(sparse_graph, "dense") == "dense" and choose_path(dense_graph, "sparse") == "sparse"


def test_bad_options_raise_one_clear_error(graph):
    with pytest.raises(InteractionError, match="Unknown interaction 'foo'. Valid values: scalar, vector"):
        _make("foo", graph)
    with pytest.raises(InteractionError, match="Unknown path 'gpu'. Valid values: auto, sparse, dense"):
        _make("scalar", graph, path="gpu")
    with pytest.raises(InteractionError, match="Unknown phi"):
        _make("scalar", graph, phi="swishy")
    with pytest.raises(InteractionError, match="Interaction 'scalar' has no option 'rank'. Valid options: edge_gate, "
                                               "gate_init_logit, gate_penalty, path, phi"):
        _make("scalar", graph, rank=3)
    with pytest.raises(InteractionError, match="Interaction 'lowrank' has no option 'rnak'.*phi, rank"):
        _make("lowrank", graph, rnak=3)
