"""Fixed fan-in neighbour lists and the three gather kernels of the sparse path.

Why not ``segment_sum``: on CPU a scatter-add over an edge list runs ~25x slower per
operation than a dense matmul (measured with `tnd-bench --suite core`), and materialising a gathered ``[N, K, ...]``
tensor is memory-bound. Here every neuron's in-neighbours are padded to a static
``K`` slots (pad slots point at an extra all-zero row ``N`` and carry weight 0), the slots
are processed in a ``lax.scan`` over chunks of ``chunk`` slots whose gathers fuse with the
multiply-add (nothing of size ``N*K*features`` is ever materialised), and the backward pass
is *also* a gather: it uses the transposed (out-neighbour) lists instead of scattering.

Layouts (neuron-major so a gathered row is a contiguous ``B*d`` block):
  x:  ``[N, *F]``  neuron features, e.g. ``F = (B, d)``
  w:  ``[K, N, *W]`` per-slot weights, slot-major, ``W`` broadcastable against ``F``
      (``(1, 1)`` scalar per edge, ``(1, d)`` vector per edge, ``(B, 1)`` per edge and batch)

Kernels (all differentiable through custom VJPs built from one another):
  aggregate(nl, x, w)            m[n]    = sum_k w[k, n] * x[in[k, n]]
  aggregate_transpose(nl, g, w)  dx[j]   = sum_{(k, n): in[k, n] = j} w[k, n] * g[n]
  slot_dot(nl, y, x, wshape)     s[k, n] = reduce_to(wshape)(y[n] * x[in[k, n]])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from tnd.graph.neuron_graph import NeuronGraph


@dataclass(frozen=True, eq=False)
class NeighbourLists:
    """Static padded in- and out-neighbour lists of a graph (NumPy, compile-time constants).

    Attributes:
      num_neurons, num_edges: N, E.
      fan_in: K, the padded number of in-slots (max in-degree rounded up to ``chunk``).
      chunk: slots processed per fused scan iteration.
      in_index: ``[K, N]`` sender of slot k of receiver n (``N`` = pad, the zero row).
      in_edge: ``[K, N]`` edge id (position in the graph's sorted edges) of each slot
        (``E`` = pad) -- scatters edge-ordered parameters into slot layout by a gather.
      out_index: ``[Ko, N]`` receivers of neuron j's out-edges (``N`` = pad).
      out_slot: ``[Ko, N]`` flat slot ``k * N + n`` of each out-edge (``K * N`` = pad).
      dense_index: ``[E]`` flat ``sender * N + receiver`` of each edge (dense layout).
    """

    graph: NeuronGraph
    num_neurons: int
    num_edges: int
    fan_in: int
    chunk: int
    in_index: np.ndarray
    in_edge: np.ndarray
    out_index: np.ndarray
    out_slot: np.ndarray
    dense_index: np.ndarray

    def __hash__(self) -> int:
        return hash((self.graph.fingerprint(), self.chunk))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NeighbourLists) and self.chunk == other.chunk and self.graph == other.graph
        )

    def to_slots(self, edge_values: jax.Array) -> jax.Array:
        """Edge-ordered ``[E, *W]`` values -> slot layout ``[K, N, *W]`` (0 in pad slots)."""
        padded = jnp.concatenate([edge_values, jnp.zeros((1,) + edge_values.shape[1:], edge_values.dtype)])
        return padded[self.in_edge]

    def to_dense(self, edge_values: jax.Array) -> jax.Array:
        """Edge-ordered ``[E, *W]`` values -> dense ``[N_send, N_recv, *W]`` (0 off the graph)."""
        n = self.num_neurons
        dense = jnp.zeros((n * n,) + edge_values.shape[1:], edge_values.dtype)
        dense = dense.at[self.dense_index].set(edge_values, indices_are_sorted=False, unique_indices=True)
        return dense.reshape((n, n) + edge_values.shape[1:])


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@functools.lru_cache(maxsize=64)
def neighbour_lists(graph: NeuronGraph, chunk: int = 8) -> NeighbourLists:
    """Builds (and caches per graph) the padded neighbour lists; O(E) NumPy work."""
    n, e = graph.num_neurons, graph.num_edges
    senders, receivers = graph.senders.astype(np.int64), graph.receivers.astype(np.int64)
    in_deg = np.bincount(receivers, minlength=n)
    chunk = max(1, min(chunk, int(in_deg.max())))
    k = _round_up(int(in_deg.max()), chunk)
    # edges are sorted by receiver, so slot of edge e = e - first edge of its receiver
    starts = np.concatenate([[0], np.cumsum(in_deg)[:-1]])
    slot = np.arange(e) - starts[receivers]
    in_index = np.full((k, n), n, np.int32)
    in_edge = np.full((k, n), e, np.int32)
    in_index[slot, receivers] = senders
    in_edge[slot, receivers] = np.arange(e)
    out_deg = np.bincount(senders, minlength=n)
    ko = _round_up(int(out_deg.max()), chunk)
    order = np.lexsort((receivers, senders))  # edges sorted by sender
    out_starts = np.concatenate([[0], np.cumsum(out_deg)[:-1]])
    o = np.arange(e) - out_starts[senders[order]]
    out_index = np.full((ko, n), n, np.int32)
    out_slot = np.full((ko, n), k * n, np.int32)
    out_index[o, senders[order]] = receivers[order]
    out_slot[o, senders[order]] = slot[order] * n + receivers[order]
    arrays = (in_index, in_edge, out_index, out_slot)
    for array in arrays:
        array.setflags(write=False)
    dense_index = (senders * n + receivers).astype(np.int64 if n * n >= 2**31 else np.int32)
    return NeighbourLists(graph, n, e, k, chunk, *arrays, dense_index)


# ------------------------------------------------------------------------ scan core
COLUMN_CHUNK = 16  # feature columns per scan step of the slot dot products (fewer steps, same work)


def _with_zero_row(x: jax.Array) -> jax.Array:
    return jnp.concatenate([x, jnp.zeros((1,) + x.shape[1:], x.dtype)])


def _chunks(array: np.ndarray | jax.Array, chunk: int):
    return array.reshape((array.shape[0] // chunk, chunk) + array.shape[1:])


def _gather_sum(index: np.ndarray, w: jax.Array, x: jax.Array, chunk: int) -> jax.Array:
    """``out[n] = sum_k w[k, n] * x_ext[index[k, n]]`` as a scan over fused slot chunks."""
    if all(size == 1 for size in w.shape[2:]):  # one weight per slot: rows as flat vectors
        flat = _gather_sum_rows(index, w.reshape(w.shape[:2] + (1,)), x.reshape(x.shape[0], -1), chunk)
        return flat.reshape(x.shape)
    return _gather_sum_rows(index, w, x, chunk)


def _gather_sum_rows(index: np.ndarray, w: jax.Array, x: jax.Array, chunk: int) -> jax.Array:
    x_ext = _with_zero_row(x)
    out_shape = jnp.broadcast_shapes(x.shape, w.shape[1:])

    def body(acc, inputs):
        idx, wc = inputs
        for u in range(chunk):  # unrolled: the gathers fuse with the multiply-add
            acc = acc + wc[u] * x_ext.at[idx[u]].get(mode="promise_in_bounds")
        return acc, None

    acc = jnp.zeros(out_shape, jnp.result_type(x.dtype, w.dtype))
    acc, _ = jax.lax.scan(body, acc, (_chunks(jnp.asarray(index), chunk), _chunks(w, chunk)))
    return acc


def _reduce_to(value: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    axes = tuple(i for i, (have, want) in enumerate(zip(value.shape, shape)) if want == 1 and have != 1)
    return value.sum(axes, keepdims=True) if axes else value


def _slot_products(index: np.ndarray, y: jax.Array, x: jax.Array, wshape: tuple[int, ...], chunk: int) -> jax.Array:
    """``s[k, n] = reduce_to(wshape)(y[n] * x_ext[index[k, n]])``, scanned over slot chunks."""
    if all(size == 1 for size in wshape):  # a full dot product per slot
        flat = _slot_dots_feature_major(index, y.reshape(y.shape[0], -1), x.reshape(x.shape[0], -1))
        return flat.reshape(flat.shape + (1,) * len(wshape))
    x_ext = _with_zero_row(x)

    def body(_, idx):
        rows = [
            _reduce_to(y * x_ext.at[idx[u]].get(mode="promise_in_bounds"), (y.shape[0],) + wshape)
            for u in range(chunk)
        ]
        return None, jnp.stack(rows)

    _, s = jax.lax.scan(body, None, _chunks(jnp.asarray(index), chunk))
    return s.reshape((-1,) + s.shape[2:])


def _slot_dots_feature_major(index: np.ndarray, y: jax.Array, x: jax.Array) -> jax.Array:
    """``s[k, n] = sum_f y[n, f] * x_ext[index[k, n], f]`` for ``x, y: [N, C]`` -> ``[K, N]``.

    A per-slot row reduction runs ~3x slower on CPU than this feature-major form, which
    loops over the C feature columns (`COLUMN_CHUNK` per scan step) and gathers *within* one
    column: every step is an elementwise multiply-add on the ``[K, N]`` accumulator.
    """
    columns = x.shape[1]
    chunk = min(COLUMN_CHUNK, columns)
    pad = -columns % chunk
    y_t = jnp.pad(y.T, ((0, pad), (0, 0)))                    # [C', N]
    x_t = jnp.pad(x.T, ((0, pad), (0, 1)))                    # [C', N + 1]: the zero pad row
    index = jnp.asarray(index)

    def body(acc, inputs):
        yc, xc = inputs
        for u in range(chunk):
            acc = acc + yc[u] * xc[u].at[index].get(mode="promise_in_bounds")
        return acc, None

    acc = jnp.zeros(index.shape, jnp.result_type(x.dtype, y.dtype))
    acc, _ = jax.lax.scan(body, acc, (_chunks(y_t, chunk), _chunks(x_t, chunk)))
    return acc


def _slots_to_out(nl: NeighbourLists, w: jax.Array) -> jax.Array:
    """Slot-layout weights ``[K, N, *W]`` -> out-list layout ``[Ko, N, *W]``."""
    flat = _with_zero_row(w.reshape((-1,) + w.shape[2:]))
    return flat[nl.out_slot]


def _wshape(w: jax.Array) -> tuple[int, ...]:
    return tuple(w.shape[2:])


def _fshape(x: jax.Array) -> tuple[int, ...]:
    return tuple(x.shape[1:])


def _match(grad: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Sums a broadcast gradient back to the (trailing) shape of its operand."""
    extra = grad.ndim - len(shape)
    grad = grad.sum(tuple(range(extra))) if extra > 0 else grad
    return _reduce_to(grad, shape)


# ------------------------------------------------------------------------ kernels
@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def aggregate(nl: NeighbourLists, x: jax.Array, w: jax.Array) -> jax.Array:
    """``m[n] = sum_k w[k, n] * x[in_index[k, n]]``: x ``[N, *F]``, w ``[K, N, *W]`` -> ``[N, *F]``."""
    return _gather_sum(nl.in_index, w, x, nl.chunk)


def _aggregate_fwd(nl, x, w):
    return aggregate(nl, x, w), (x, w)


def _aggregate_bwd(nl, res, g):
    x, w = res
    g = _match(g, _fshape(x)) if g.shape[1:] != x.shape[1:] else g
    dx = _match(aggregate_transpose(nl, g, w), (x.shape[0],) + _fshape(x))
    dw = slot_dot(nl, g, x, _wshape(w))
    return dx, dw


aggregate.defvjp(_aggregate_fwd, _aggregate_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def aggregate_transpose(nl: NeighbourLists, g: jax.Array, w: jax.Array) -> jax.Array:
    """``dx[j] = sum_{(k, n): in_index[k, n] = j} w[k, n] * g[n]`` via the out-lists (no scatter)."""
    return _gather_sum(nl.out_index, _slots_to_out(nl, w), g, nl.chunk)


def _transpose_fwd(nl, g, w):
    return aggregate_transpose(nl, g, w), (g, w)


def _transpose_bwd(nl, res, ct):
    g, w = res
    dg = _match(aggregate(nl, ct, w), (g.shape[0],) + _fshape(g))
    dw = slot_dot(nl, g, ct, _wshape(w))
    return dg, dw


aggregate_transpose.defvjp(_transpose_fwd, _transpose_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 3))
def slot_dot(nl: NeighbourLists, y: jax.Array, x: jax.Array, wshape: tuple[int, ...]) -> jax.Array:
    """``s[k, n] = reduce_to(wshape)(y[n] * x[in_index[k, n]])`` -> ``[K, N, *wshape]``."""
    return _slot_products(nl.in_index, y, x, tuple(wshape), nl.chunk)


def _slot_dot_fwd(nl, y, x, wshape):
    return slot_dot(nl, y, x, wshape), (y, x)


def _slot_dot_bwd(nl, wshape, res, gs):
    y, x = res
    dy = _match(aggregate(nl, x, gs) * jnp.ones_like(y), y.shape)
    dx = _match(aggregate_transpose(nl, y, gs) * jnp.ones_like(x), x.shape)
    return dy, dx


slot_dot.defvjp(_slot_dot_fwd, _slot_dot_bwd)
