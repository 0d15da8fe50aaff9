"""The TND state layout inside a program: neuron-major *rows*.

The harness's carry is batch-major ``[B, N, d]``. Inside a sequence (and a policy step) TND
keeps it as rows ``[N, d * B]``: one contiguous row per neuron, channel-major within the row
(element ``(c, b)`` at column ``c * B + b``). Why: on CPU, XLA runs elementwise work on a
2-D array with long rows several times faster than on ``[N, B, d]`` (rows of d = 8), a
neighbour is gathered as one contiguous row, and the per-neuron channel maps are batched
matmuls ``[N, o, i] x [N, i, B]`` with no transposes.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


def to_rows(carry: jax.Array) -> jax.Array:
    """Batch-major ``[B, N, d]`` -> rows ``[N, d * B]``."""
    b, n, d = carry.shape
    return jnp.transpose(carry, (1, 2, 0)).reshape(n, d * b)


def from_rows(rows: jax.Array, batch: int) -> jax.Array:
    """Rows ``[N, d * B]`` -> batch-major ``[B, N, d]``."""
    n = rows.shape[0]
    return jnp.transpose(rows.reshape(n, -1, batch), (2, 0, 1))


def per_neuron_rows(values: jax.Array, batch: int) -> jax.Array:
    """Per-neuron channel values ``[N or 1, d]`` -> rows ``[N or 1, d * B]`` (repeated over the batch)."""
    return jnp.repeat(values, batch, axis=1)


def batch_columns(values: jax.Array, channels: int) -> jax.Array:
    """Per-sample values ``[..., B]`` -> one row ``[..., 1, channels * B]`` (the same for every channel)."""
    return jnp.tile(values, channels)[..., None, :]


class ChannelWeights(NamedTuple):
    """Per-neuron channel-map weights ``w: [N, o, i]`` with their transpose ``w_t: [N, i, o]``.

    JAX's own gradient of a batched matmul contracts ``w`` over its middle axis, which XLA's
    CPU backend runs many times slower than a matmul on the transposed copy (measured: 383
    µs against ~20 µs per round for a 320-neuron TND); with the copy, `channel_map`'s reverse
    mode uses it. Forward mode (`tnd.analysis`) needs plain weights.
    """

    w: jax.Array
    w_t: jax.Array


def _channel_map(weights: jax.Array, x: jax.Array) -> jax.Array:
    n, _, i = weights.shape
    out = jax.lax.dot_general(weights, x.reshape(n, i, -1), (((2,), (1,)), ((0,), (0,))))
    return out.reshape(n, -1)


@jax.custom_vjp
def _channel_map_pair(w: jax.Array, w_t: jax.Array, x: jax.Array) -> jax.Array:
    return _channel_map(w, x)


def _pair_fwd(w, w_t, x):
    return _channel_map(w, x), (w, w_t, x)


def _pair_bwd(residuals, g):
    w, w_t, x = residuals
    return channel_outer(g, x, w.shape[1], w.shape[2]), jnp.zeros_like(w_t), _channel_map(w_t, g)


_channel_map_pair.defvjp(_pair_fwd, _pair_bwd)


def channel_map(weights: jax.Array | ChannelWeights, x: jax.Array) -> jax.Array:
    """Per-neuron channel map: ``weights: [N, o, i]`` times rows ``x: [N, i * B]`` -> rows ``[N, o * B]``.

    `ChannelWeights` (weights with their transpose) give the same values with a fast
    reverse mode and no forward mode; plain weights allow both modes.
    """
    if isinstance(weights, ChannelWeights):
        return _channel_map_pair(weights.w, weights.w_t, x)
    return _channel_map(weights, x)


def channel_outer(g: jax.Array, x: jax.Array, outputs: int, inputs: int) -> jax.Array:
    """The gradient of `channel_map`'s weights: ``sum_b g[n, o, b] x[n, i, b]`` -> ``[N, o, i]``."""
    n = g.shape[0]
    return jax.lax.dot_general(g.reshape(n, outputs, -1), x.reshape(n, inputs, -1), (((2,), (2,)), ((0,), (0,))))


def channels(rows: jax.Array, start: int, stop: int, batch: int) -> jax.Array:
    """Channels ``start:stop`` of rows ``[N, d * B]`` (a contiguous block of columns)."""
    return rows[:, start * batch:stop * batch]


def sum_to(value: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Sums ``value`` down to ``shape`` (a broadcast operand's gradient): leading axes away,
    and the axes where ``shape`` is 1."""
    shape = tuple(shape)
    if value.shape == shape:
        return value
    lead = value.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and value.shape[lead + i] != 1)
    return value.sum(axes, keepdims=True).reshape(shape)
