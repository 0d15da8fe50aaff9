"""One leaky round with static edge weights, forward and backward written out (a custom VJP).

The round of `tnd.core.cell` for the commonest TND (leaky dynamics F, an interaction I whose
weights do not depend on the state, a phi whose derivative follows from its output), on
neuron-major rows ``[N, C]``, ``C = d * B`` (`tnd.layout`)::

    m   = sum_k w[k] * x[in_index[k]]                 x = phi(h): messages along in-slots
    t   = tanh(W [m; h] + u + b)                      W: per-neuron [N, d, 2d]
    h'  = h + (t - h) * a                             a = 1 / tau
    x'  = phi(h')

Why by hand: JAX's own derivative of this round, inside a scan, runs about 1.5x slower on
CPU (measured with `tnd-bench --suite models`): it keeps more per-round residuals and XLA
fuses the gathers of the backward pass into several consumers, recomputing them. Here the
residuals are ``h`` and ``t`` (``x`` and ``m`` are recomputed: as fast as storing them, and
a third less memory), the weight gradients are formed once per round, and the backward
pass gathers along the out-neighbour lists (no scatter). The carry holds
``x = phi(h)`` beside ``h`` so that phi runs once per round, not once per gathered slot.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from tnd.interaction.neighbours import gather_sum, slot_products
from tnd.interaction.operators import PHI_GRADS_FROM_OUTPUT, PHIS
from tnd.layout import channel_map, channel_outer, sum_to


class LeakyRoundWeights(NamedTuple):
    """The loop-invariant inputs of `leaky_round` (prepared once per sequence).

    ``w``, ``w_out``: per-slot edge weights (tuples of rows, `tnd.interaction.PreparedWeights`);
    ``w_dyn``: ``[N, d, 2d]``, ``w_dyn_t`` its transpose ``[N, 2d, d]``; ``b``: rows
    ``[N or 1, C]``; ``inv_tau``: rows ``[N, C]``.
    """

    w: tuple
    w_out: tuple
    w_dyn: jax.Array
    w_dyn_t: jax.Array
    b: jax.Array
    inv_tau: jax.Array


def leaky_round_forward(phi: str, index: tuple[jax.Array, jax.Array], weights: LeakyRoundWeights, h: jax.Array,
                        x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`leaky_round` without its hand-written backward pass: JAX differentiates it in either
    mode (forward mode too: the Lyapunov exponents of `tnd.analysis` push tangents through it)."""
    return _forward(phi, index[0], weights, h, x, u)[0]


def _forward(phi, in_index, weights, h, x, u):
    m = gather_sum(in_index, weights.w, x)
    t = jnp.tanh(channel_map(weights.w_dyn, jnp.concatenate([m, h], axis=1)) + u + weights.b)
    h_next = h + (t - h) * weights.inv_tau
    return (h_next, PHIS[phi](h_next)), (m, t)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def leaky_round(phi: str, index: tuple[jax.Array, jax.Array], weights: LeakyRoundWeights, h: jax.Array,
                x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(h, x) -> (h', x')`` for one round (module docstring); ``index = (in_index, out_index)``,
    ``u``: the placed input rows ``[N, C]`` (zero off the input neurons)."""
    return _forward(phi, index[0], weights, h, x, u)[0]


def _round_fwd(phi, index, weights, h, x, u):
    out, (_, t) = _forward(phi, index[0], weights, h, x, u)
    return out, (index, weights, h, t)


def _round_bwd(phi, residuals, cotangents):
    (in_index, out_index), weights, h, t = residuals
    x = PHIS[phi](h)
    g_h, g_x = cotangents
    d = weights.w_dyn.shape[1]
    a = weights.inv_tau
    h_next = h + (t - h) * a
    g = g_h + g_x * PHI_GRADS_FROM_OUTPUT[phi](PHIS[phi](h_next))
    g_pre = g * a * (1.0 - t * t)
    m = gather_sum(in_index, weights.w, x)
    d_mh = channel_map(weights.w_dyn_t, g_pre)
    d_m, d_h = d_mh[:, : h.shape[1]], d_mh[:, h.shape[1]:]
    d_x = gather_sum(out_index, weights.w_out, d_m)
    d_w = tuple(sum_to(s, w.shape) for s, w in zip(slot_products(in_index, d_m, x), weights.w))
    d_weights = LeakyRoundWeights(
        w=d_w,
        w_out=tuple(jnp.zeros_like(w) for w in weights.w_out),
        w_dyn=channel_outer(g_pre, jnp.concatenate([m, h], axis=1), d, 2 * d),
        w_dyn_t=jnp.zeros_like(weights.w_dyn_t),
        b=sum_to(g_pre, weights.b.shape),
        inv_tau=g * (t - h),
    )
    return None, d_weights, g * (1.0 - a) + d_h, d_x, g_pre


leaky_round.defvjp(_round_fwd, _round_bwd)
