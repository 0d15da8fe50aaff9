"""The sparse path's kernels: gathers along padded neighbour lists, on neuron-major rows.

States are *rows*: ``x: [N, C]`` with one contiguous row per neuron (``C = d * B``, channel
major within the row, `tnd.core.layout`). Every neuron's in-neighbours are padded to ``K``
slots (`tnd.graph.arrays.neighbour_arrays`); a pad slot points at neuron 0 and carries
weight 0. Slot weights are a *tuple* of ``K`` arrays, each broadcastable to ``[N, C]``:

  aggregate(index, x, w, w_out)  m[n] = sum_k w[k][n] * x[in_index[k, n]]

Why gathers of whole rows: on CPU one gathered row is a contiguous copy of ``C`` floats,
so a slot costs about as much as an elementwise pass (`tnd-bench --suite core`), while a
scatter-add (``segment_sum``'s gradient) runs many times slower. The backward pass is
therefore also a gather, along the out-neighbour lists: ``dx[j] = sum_k w_out[k][j] *
g[out_index[k, j]]`` with ``w_out`` the same weights in out-slot layout, which the caller
prepares (once per sequence for weights that do not depend on the state). Slot weights stay
a tuple, not a ``[K, N, C]`` array, because XLA fuses each slot's gather into its
multiply-add only when the slots are separate arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from tnd.layout import sum_to


def gather_sum(index: jax.Array, weights: Sequence[jax.Array], x: jax.Array) -> jax.Array:
    """``sum_k weights[k] * x[index[k]]`` for ``x: [N, C]``, ``index: [K, N]``: ``[N, C]``."""
    acc = weights[0] * x[index[0]]
    for k in range(1, len(weights)):
        acc = acc + weights[k] * x[index[k]]
    return acc


def slot_products(index: jax.Array, y: jax.Array, x: jax.Array) -> tuple[jax.Array, ...]:
    """``(y * x[index[k]] for every slot k)``: the gradient of each slot's weight, per element."""
    return tuple(y * x[index[k]] for k in range(index.shape[0]))


@jax.custom_vjp
def aggregate(in_index: jax.Array, out_index: jax.Array, x: jax.Array, w: tuple[jax.Array, ...],
              w_out: tuple[jax.Array, ...]) -> jax.Array:
    """Messages ``m[n] = sum_k w[k][n] * x[in_index[k, n]]`` (rows ``[N, C]``).

    ``w_out`` must be ``w`` in out-slot layout (`tnd.graph.GraphArrays.slots_to_out`); it is
    used by the backward pass only and receives no gradient of its own (``w`` gets all of it).
    """
    return gather_sum(in_index, w, x)


def _aggregate_fwd(in_index, out_index, x, w, w_out):
    return gather_sum(in_index, w, x), (in_index, out_index, x, w, w_out)


def _aggregate_bwd(residuals, g):
    in_index, out_index, x, w, w_out = residuals
    dx = gather_sum(out_index, w_out, g)
    dw = tuple(sum_to(d, wk.shape) for d, wk in zip(slot_products(in_index, g, x), w))
    return None, None, dx, dw, tuple(jnp.zeros_like(v) for v in w_out)


aggregate.defvjp(_aggregate_fwd, _aggregate_bwd)
