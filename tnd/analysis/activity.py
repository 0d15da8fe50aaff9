"""Neuron state trajectories, per-neuron activity and the effective rank of a trajectory.

* `state_trajectory(model, observations)` runs a harness model over ``[B, T, *obs]`` and
  keeps every carry: a flat ``[B, T, D]`` view and, for a TND state ``[B, N, d]``, a
  ``[B, T, N, d]`` per-neuron view.
* `neuron_activity(traj)`: mean ``|h|`` and variance per neuron.
* `effective_rank(traj)`: how many directions the state trajectory really uses.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from tnd.analysis.stability import AnalysisError, check_sequence_inputs
from tnd.models.base import SequenceModel, reset_carry


@dataclasses.dataclass(frozen=True)
class StateTrajectory:
    """The carries of a model along ``[B, T]`` inputs.

    Attributes:
      flat: ``[B, T, D]``, the floating-point carry leaves of each step raveled in pytree
        order (``D`` = floating-point scalars per batch row). ``flat[:, t]`` is the carry
        *after* step ``t``.
      neurons: ``[B, T, N, d]`` when every floating-point carry leaf is a ``[B, N, d_i]``
        per-neuron state (a TND carry; several leaves are concatenated along ``d``),
        else ``None``.
      carries: the stacked carry pytree itself, leaves ``[B, T, ...]``.
    """

    flat: jax.Array
    neurons: jax.Array | None
    carries: Any

    def units(self) -> jax.Array:
        """``[B, T, N, d]``: the neuron view, or the flat view with each scalar a neuron (``d = 1``)."""
        return self.neurons if self.neurons is not None else self.flat[..., None]


def state_trajectory(
    model: SequenceModel,
    observations: jax.Array,
    *,
    resets: jax.Array | None = None,
    carry: Any = None,
) -> StateTrajectory:
    """Runs ``model`` over ``observations [B, T, *obs_shape]`` and stacks its carries over time.

    Uses the harness (``encoder`` then ``core_step``, reset where ``resets[:, t]``), one
    jit-compiled ``lax.scan`` on ``nnx.split`` state, so it works for every harness model.
    """
    observations, resets = check_sequence_inputs(observations, resets)
    batch, steps = observations.shape[:2]
    graphdef, state = nnx.split(model)
    carries = _stacked_carries(graphdef, state, observations, resets, carry)
    leaves = [x for x in jax.tree.leaves(carries) if jnp.issubdtype(x.dtype, jnp.inexact)]
    if not leaves:
        raise AnalysisError("The model's carry has no floating-point leaves: no state to analyse.")
    flat = jnp.concatenate([x.reshape(batch, steps, -1) for x in leaves], axis=-1)
    neurons = None
    if all(x.ndim == 4 for x in leaves) and len({x.shape[2] for x in leaves}) == 1:
        neurons = jnp.concatenate(leaves, axis=-1)
    return StateTrajectory(flat=flat, neurons=neurons, carries=carries)


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _stacked_carries(graphdef, state, observations, resets, carry):
    model = nnx.merge(graphdef, state)
    batch, steps = observations.shape[:2]
    initial = model.initial_state(batch)
    if carry is None:
        carry = initial
    features = model.encoder(observations.reshape((batch * steps,) + observations.shape[2:]))
    features = features.reshape((batch, steps) + features.shape[1:])

    def body(c, inputs):
        f_t, r_t = inputs
        c, _ = model.core_step(reset_carry(c, initial, r_t), f_t)
        return c, c

    _, carries = jax.lax.scan(body, carry, (jnp.swapaxes(features, 0, 1), jnp.swapaxes(resets, 0, 1)))
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), carries)


def _as_units(traj: StateTrajectory | jax.Array) -> jax.Array:
    """``[..., T, N, d]`` from a `StateTrajectory`, a ``[..., T, D]`` array (``d = 1``) or ``[B, T, N, d]``."""
    if isinstance(traj, StateTrajectory):
        return traj.units()
    traj = jnp.asarray(traj)
    if traj.ndim == 4:
        return traj
    if traj.ndim in (2, 3):
        return traj[..., None]
    raise AnalysisError(
        f"Expected a StateTrajectory, [T, D], [B, T, D] or [B, T, N, d] array, got shape {traj.shape}."
    )


def neuron_activity(traj: StateTrajectory | jax.Array) -> dict[str, jax.Array]:
    """Per-neuron activity statistics, pooled over batch, time and the neuron's state dims.

    Neurons are the ``N`` of a ``[B, T, N, d]`` TND view, or each of the ``D`` scalars of a
    flat ``[B, T, D]`` / ``[T, D]`` trajectory.

    Returns a dict of ``[N]`` arrays:
      * ``mean_abs``: mean of ``|h|`` over batch, time and state dims (how active);
      * ``variance``: variance over batch and time, averaged over state dims (how much the
        neuron moves; ~0 for a neuron stuck at a fixed value, dead or saturated);
      * ``max_abs``: the largest ``|h|`` seen (saturation check for bounded dynamics).
    """
    units = _as_units(traj)
    units = units.reshape((-1,) + units.shape[-2:])  # [samples, N, d]
    return {
        "mean_abs": jnp.mean(jnp.abs(units), axis=(0, 2)),
        "variance": jnp.mean(jnp.var(units, axis=0), axis=-1),
        "max_abs": jnp.max(jnp.abs(units), axis=(0, 2)),
    }


def effective_rank(traj: StateTrajectory | jax.Array, *, center: bool = True) -> jax.Array:
    """Entropy-based effective rank of each state trajectory (Roy & Vetterli, EUSIPCO 2007).

    For a trajectory matrix ``H [T, D]`` with singular values ``s_1..s_K``
    (``K = min(T, D)``), ``p_k = s_k / sum_j s_j`` and::

        erank(H) = exp(-sum_k p_k log p_k)        (with 0 log 0 = 0)

    a real number in ``[1, K]``: 1 when the states move along one direction, ``K`` when all
    singular values are equal (isotropic). With ``center=True`` (default) the time mean is
    removed first, so a constant offset does not count as a direction.

    Args:
      traj: a `StateTrajectory` (its flat view), or an array ``[..., T, D]``.

    Returns:
      ``[...]``: one effective rank per trajectory (a scalar for ``[T, D]``); NaN for an
      all-zero trajectory.
    """
    h = traj.flat if isinstance(traj, StateTrajectory) else jnp.asarray(traj)
    if h.ndim < 2:
        raise AnalysisError(f"effective_rank expects [..., T, D], got shape {h.shape}.")
    h = h.astype(jnp.promote_types(h.dtype, jnp.float32))
    if center:
        h = h - jnp.mean(h, axis=-2, keepdims=True)
    s = jnp.linalg.svd(h, compute_uv=False)
    p = s / jnp.sum(s, axis=-1, keepdims=True)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)
    return jnp.exp(entropy)
