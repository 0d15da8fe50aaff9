"""The neuronal stability metric: finite-time Lyapunov exponents of the hidden dynamics.

After Neuronal Group Communication (arXiv 2510.16851): a model is *stable* when small
perturbations of its neuron states contract along a trajectory. We measure this with the
finite-time Lyapunov exponents (FTLE) of the carry update ``h_{t+1} = f(h_t, x_t)`` along
one input sequence ``x_0 .. x_{T-1}``::

    lambda_i = (1 / T') * sum_t log |R_t[i, i]|,    Q_{t+1} R_t = J_t Q_t  (QR decomposition)

where ``J_t = d f / d h`` at ``(h_t, x_t)`` is applied to the ``k`` orthonormal tangent
vectors ``Q_t`` by Jacobian-vector products (``jax.linearize``; the Jacobian is never built)
and ``T'`` is the number of counted steps. ``lambda_1`` (``num_exponents=1``: renormalise
one tangent vector, average its log growth) is the largest exponent. Units: nats per time
step. ``lambda_1 < 0``: perturbations of the neuron states die out (contracting, stable
dynamics); ``> 0``: they grow (chaotic / unstable); ``~ 0``: marginal (long memory).

* `lyapunov_exponents` works for any ``step_fn(carry, x_t) -> carry`` (carry any pytree).
* `model_lyapunov` applies it to a harness `SequenceModel`, one value per episode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.flatten_util import ravel_pytree

from tnd.models.base import SequenceModel, reset_carry

Carry = Any


class AnalysisError(ValueError):
    """Bad input to an analysis function; the message says what is wrong and how to fix it."""


def check_sequence_inputs(observations, resets, *, batch_name: str = "B") -> tuple[jax.Array, jax.Array]:
    """Validates ``observations [B, T, *obs]`` and optional ``resets [B, T]`` (default: none)."""
    observations = jnp.asarray(observations)
    if observations.ndim < 3:
        raise AnalysisError(
            f"observations must be [{batch_name}, T, *obs_shape], got shape {observations.shape}."
        )
    shape = observations.shape[:2]
    resets = jnp.zeros(shape, bool) if resets is None else jnp.asarray(resets, bool)
    if resets.shape != shape:
        raise AnalysisError(f"resets must have shape [{batch_name}, T] = {shape}, got {resets.shape}.")
    return observations, resets


def _split_float(carry: Carry) -> tuple[list[bool], list[Any]]:
    """Which carry leaves are floating point (perturbable) and the leaves themselves."""
    leaves = jax.tree.leaves(carry)
    return [jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact) for x in leaves], leaves


def _flat_step(step_fn: Callable, carry0: Carry):
    """Rewrites ``step_fn`` on a flat float vector (integer leaves, e.g. counters, ride along).

    Returns ``(flat0, rest0, f)`` with ``f(flat, x, rest) -> (flat_next, rest_next)``.
    """
    treedef = jax.tree.structure(carry0)
    is_float, leaves = _split_float(carry0)
    float_leaves = [x for x, f in zip(leaves, is_float) if f]
    rest0 = [x for x, f in zip(leaves, is_float) if not f]
    flat0, unravel = ravel_pytree(float_leaves)

    def join(flat, rest):
        floats, others = iter(unravel(flat)), iter(rest)
        return jax.tree.unflatten(treedef, [next(floats) if f else next(others) for f in is_float])

    def split(carry):
        out_leaves = jax.tree.leaves(carry)
        if len(out_leaves) != len(is_float):
            raise AnalysisError(
                "step_fn must return a carry with the same structure as carry0 "
                f"({len(is_float)} leaves), got {len(out_leaves)} leaves."
            )
        floats = [x for x, f in zip(out_leaves, is_float) if f]
        return ravel_pytree(floats)[0].astype(flat0.dtype), [x for x, f in zip(out_leaves, is_float) if not f]

    def f(flat, x, rest):
        return split(step_fn(join(flat, rest), x))

    return flat0, rest0, f


@functools.partial(
    jax.jit, static_argnames=("step_fn", "num_exponents", "renormalize_every", "burn_in")
)
def lyapunov_exponents(
    step_fn: Callable[[Carry, Any], Carry],
    carry0: Carry,
    inputs: Any,
    *,
    num_exponents: int = 1,
    key: jax.Array | None = None,
    renormalize_every: int = 1,
    burn_in: int = 0,
    skip: jax.Array | None = None,
) -> jax.Array:
    """The top-``k`` finite-time Lyapunov exponents of ``carry -> step_fn(carry, x_t)``.

    Args:
      step_fn: ``step_fn(carry, x_t) -> carry``, a pure function (static under jit: pass the
        same function object to reuse the compilation). Only the floating-point leaves of the
        carry are perturbed; other leaves (e.g. integer counters) are carried along.
      carry0: the initial carry, any pytree; ``D`` = number of floating-point scalars in it.
      inputs: one trajectory, a pytree of arrays with leading time axis ``[T, ...]``.
      num_exponents: ``k``, how many exponents (``1 <= k <= D``). ``k = 1`` renormalises one
        tangent vector; ``k > 1`` re-orthonormalises ``k`` tangent vectors by QR.
      key: PRNG key for the random initial tangent vectors (default ``PRNGKey(0)``).
      renormalize_every: re-orthonormalise every this many steps (and at the last step).
        1 is the safest; larger values save QRs but may overflow for expanding dynamics.
      burn_in: the first ``burn_in`` steps align the tangent vectors but are not counted.
      skip: optional ``[T]`` bool; where true, the carry is updated by ``step_fn`` but the
        step is not part of the dynamics (e.g. an episode reset): tangents are left as they
        are and the step is not counted.

    Returns:
      ``[k]`` exponents in nats per step, in decreasing order. Use ``jax.vmap`` over
      ``(carry0, inputs, key)`` for many trajectories. NaN when no step was counted.
    """
    num_steps = _check_options(inputs, num_exponents, renormalize_every, burn_in)
    flat0, rest0, f = _flat_step(step_fn, carry0)
    dim = _check_state_size(flat0, num_exponents)
    skip = _skip_mask(skip, num_steps)
    if key is None:
        key = jax.random.PRNGKey(0)
    dtype = flat0.dtype if jnp.issubdtype(flat0.dtype, jnp.floating) else jnp.float32
    q0, _ = jnp.linalg.qr(jax.random.normal(key, (dim, num_exponents), dtype))
    body = _tangent_step(f, num_exponents=num_exponents, renormalize_every=renormalize_every, burn_in=burn_in,
                         num_steps=num_steps, dtype=dtype)
    init = (flat0, rest0, q0, jnp.zeros((num_exponents,), dtype), jnp.zeros((), jnp.int32))
    (_, _, _, log_sum, counted), _ = jax.lax.scan(
        body, init, (jnp.arange(num_steps), inputs, skip)
    )
    exponents = log_sum / jnp.where(counted > 0, counted, jnp.nan)
    return jnp.sort(exponents)[::-1]


def _check_options(inputs: Any, num_exponents: int, renormalize_every: int, burn_in: int) -> int:
    """Refuses bad options or inputs of `lyapunov_exponents`; returns ``T``, the inputs' shared
    leading time axis length."""
    if num_exponents < 1:
        raise AnalysisError(f"num_exponents must be >= 1, got {num_exponents}.")
    if renormalize_every < 1:
        raise AnalysisError(f"renormalize_every must be >= 1, got {renormalize_every}.")
    input_leaves = jax.tree.leaves(inputs)
    if not input_leaves or any(jnp.ndim(x) == 0 for x in input_leaves):
        raise AnalysisError("inputs must be a (pytree of) array(s) with a leading time axis [T, ...].")
    num_steps = input_leaves[0].shape[0]
    if any(x.shape[0] != num_steps for x in input_leaves):
        raise AnalysisError("All input leaves must share the leading time axis length T.")
    if burn_in >= num_steps:
        raise AnalysisError(f"burn_in ({burn_in}) must be smaller than the number of steps T = {num_steps}.")
    return num_steps


def _check_state_size(flat0: jax.Array, num_exponents: int) -> int:
    """``D``, the size of the flat float state ``flat0 [D]``; refuses ``D = 0`` or ``k > D``."""
    dim = flat0.shape[0]
    if dim == 0:
        raise AnalysisError("carry0 has no floating-point leaves: there is no state to perturb.")
    if num_exponents > dim:
        raise AnalysisError(
            f"num_exponents={num_exponents} exceeds the state dimension D={dim}; ask for at most {dim}."
        )
    return dim


def _skip_mask(skip: jax.Array | None, num_steps: int) -> jax.Array:
    """``skip`` as a ``[T]`` bool mask (all false when None)."""
    if skip is None:
        skip = jnp.zeros((num_steps,), bool)
    skip = jnp.asarray(skip, bool)
    if skip.shape != (num_steps,):
        raise AnalysisError(f"skip must have shape [T] = ({num_steps},), got {skip.shape}.")
    return skip


def _tangent_step(f: Callable, *, num_exponents: int, renormalize_every: int, burn_in: int, num_steps: int,
                  dtype) -> Callable:
    """The scan body of `lyapunov_exponents`: one step of the carry and of its ``k`` tangent
    vectors ``q [D, k]`` (pushed forward by the JVP, re-orthonormalised by QR when due), adding
    ``log |diag R| [k]`` to the running sum for counted steps."""

    def body(state, inputs_t):
        flat, rest, q, log_sum, counted = state
        t, x_t, skip_t = inputs_t
        (new_flat, new_rest), push_forward = _linearize(f, flat, x_t, rest)
        v = jax.vmap(push_forward, in_axes=1, out_axes=1)(q)
        v = jnp.where(skip_t, q, v)
        do_qr = ((t + 1) % renormalize_every == 0) | (t == num_steps - 1) | (t == burn_in - 1)

        def orthonormalise(v):
            q_new, r = jnp.linalg.qr(v)
            return q_new, jnp.log(jnp.abs(jnp.diagonal(r)))

        if renormalize_every == 1:  # static: every step
            q, logs = orthonormalise(v)
        else:
            q, logs = jax.lax.cond(do_qr, orthonormalise, lambda v: (v, jnp.zeros((num_exponents,), dtype)), v)
        count_logs = t >= burn_in
        log_sum = log_sum + jnp.where(count_logs, logs, 0.0)
        counted = counted + jnp.where(count_logs & ~skip_t, 1, 0)
        return (new_flat, new_rest, q, log_sum, counted), None

    return body


def _linearize(f, flat, x_t, rest):
    """``f(flat, x_t, rest)`` and its Jacobian-vector product in ``flat`` (non-float outputs as aux)."""

    def g(z):
        z_next, rest_next = f(z, x_t, rest)
        return z_next, rest_next

    out, push_forward, rest_next = jax.linearize(g, flat, has_aux=True)
    return (out, rest_next), push_forward


def model_lyapunov(
    model: SequenceModel,
    observations: jax.Array,
    *,
    resets: jax.Array | None = None,
    num_exponents: int = 1,
    key: jax.Array | None = None,
    renormalize_every: int = 1,
    burn_in: int = 0,
) -> jax.Array:
    """Stability of a harness model's recurrent core along each episode: ``[E, k]`` FTLEs.

    Each row ``observations[e]`` (``[T, *obs_shape]``) is encoded by ``model.encoder`` and
    fed to ``model.core_step`` from ``model.initial_state(1)``; the exponents are those of
    the carry update ``carry -> core_step(carry, features_t)`` (the encoder and head are
    not part of the dynamics). Where ``resets[e, t]`` is true the carry is reset before step
    ``t`` as in the harness, and that step is not counted (a reset is not dynamics).

    Args:
      model: any `SequenceModel`.
      observations: ``[E, T, *obs_shape]``, one episode (or window) per row.
      resets: optional ``[E, T]`` bool.
      num_exponents, renormalize_every, burn_in: see `lyapunov_exponents`.
      key: PRNG key (default ``PRNGKey(0)``); split into one key per episode.

    Returns:
      ``[E, k]`` exponents in nats per step, decreasing along the last axis.
    """
    observations, resets = check_sequence_inputs(observations, resets, batch_name="E")
    episodes = observations.shape[0]
    if key is None:
        key = jax.random.PRNGKey(0)
    graphdef, state = nnx.split(model)
    return _model_lyapunov(
        graphdef, state, observations, resets, jax.random.split(key, episodes),
        num_exponents=num_exponents, renormalize_every=renormalize_every, burn_in=burn_in,
    )


@functools.partial(jax.jit, static_argnames=("graphdef", "num_exponents", "renormalize_every", "burn_in"))
def _model_lyapunov(graphdef, state, observations, resets, keys, *, num_exponents, renormalize_every, burn_in):
    model = nnx.merge(graphdef, state)
    episodes, steps = observations.shape[:2]
    features = model.encoder(observations.reshape((episodes * steps,) + observations.shape[2:]))
    features = features.reshape((episodes, steps) + features.shape[1:])
    initial = model.initial_state(1)

    def step_fn(carry, inputs_t):
        f_t, r_t = inputs_t
        carry = reset_carry(carry, initial, r_t[None])
        return model.core_step(carry, f_t[None])[0]

    def one_episode(f, r, k):
        return lyapunov_exponents(
            step_fn, initial, (f, r), num_exponents=num_exponents, key=k,
            renormalize_every=renormalize_every, burn_in=burn_in, skip=r,
        )

    return jax.vmap(one_episode)(features, resets, keys)
