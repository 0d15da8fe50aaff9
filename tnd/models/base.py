"""The harness contract shared by every sequence model (TND and baselines).

Every model is an ``nnx.Module`` with three calls (see docs/design.md):

* ``initial_state(batch_size) -> carry``           carry: any pytree, leaves lead with batch
* ``step(carry, x_t) -> (carry, logits_t)``         x_t: ``[B, *obs_shape]``, logits ``[B, A]``
* ``model(x, resets=None, carry=None) -> (carry, logits)``
                                                    x: ``[B, T, *obs_shape]``, logits ``[B, T, A]``

Invariant (tested for every registered model): the sequence call equals ``step`` applied
T times, where ``resets[:, t]`` replaces the carry by ``initial_state`` before step ``t``.

Subclasses build ``self.encoder`` (observation -> features) and ``self.head`` (core
output -> action logits) with `make_io`, and implement `initial_state` and `core_step`.
Models whose sequence call is not a scan (the Transformer) also override `core_sequence`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

Carry = Any


def reset_carry(carry: Carry, initial: Carry, reset: jax.Array) -> Carry:
    """Where ``reset[b]`` is true, replaces batch row ``b`` (leading axis) of ``carry`` by ``initial``.

    Floating leaves blend with a 0/1 factor, ``leaf * keep + initial * (1 - keep)``, which is
    exact for finite values: unlike ``jnp.where`` it leaves the backward pass only the small
    ``[B]`` factor to keep per step, not a predicate broadcast to the carry's full shape.
    Other leaves (integer positions, flags) use ``jnp.where``.
    """
    reset = jnp.asarray(reset, bool)

    def select(init_leaf, leaf):
        shape = reset.shape + (1,) * (leaf.ndim - reset.ndim)
        mask = reset.reshape(shape)
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            keep = jnp.logical_not(mask).astype(leaf.dtype)
            return leaf * keep + init_leaf * (1 - keep)
        return jnp.where(mask, init_leaf, leaf)

    return jax.tree.map(select, initial, carry)


class SequenceModel(nnx.Module):
    """Base class of the harness: encoder -> recurrent core -> action head."""

    encoder: nnx.Module
    head: nnx.Module

    # ---------------------------------------------------------------- to implement
    def initial_state(self, batch_size: int) -> Carry:
        raise NotImplementedError

    def core_step(self, carry: Carry, features: jax.Array) -> tuple[Carry, jax.Array]:
        """One step of the recurrent core: features ``[B, F]`` -> output ``[B, H]``."""
        raise NotImplementedError

    def sequence_step(self) -> Callable[[Carry, jax.Array], tuple[Carry, jax.Array]]:
        """The per-step core function used inside the sequence scan (default `core_step`).

        Override to hoist work that is the same at every step out of the scan; it must
        compute `core_step`. (A model whose sequence is not one scan per step overrides
        `core_sequence` instead: the Transformer, and TND, which scans over its rounds.)
        """
        return self.core_step

    def core_sequence(
        self, carry: Carry, features: jax.Array, resets: jax.Array
    ) -> tuple[Carry, jax.Array]:
        """The core over a sequence, features ``[B, T, F]`` -> outputs ``[B, T, H]``.

        Default: one ``lax.scan`` over `sequence_step`, resetting where ``resets[:, t]``.
        """
        initial = self.initial_state(features.shape[0])
        step = self.sequence_step()

        def body(c, inputs):
            f_t, r_t = inputs
            c = reset_carry(c, initial, r_t)
            return step(c, f_t)

        carry, outputs = jax.lax.scan(body, carry, (jnp.swapaxes(features, 0, 1), jnp.swapaxes(resets, 0, 1)))
        return carry, jnp.swapaxes(outputs, 0, 1)

    # ---------------------------------------------------------------- the harness
    def step(self, carry: Carry, x_t: jax.Array) -> tuple[Carry, jax.Array]:
        carry, out = self.core_step(carry, self.encoder(x_t))
        return carry, self.head(out)

    def __call__(
        self, x: jax.Array, resets: jax.Array | None = None, carry: Carry | None = None
    ) -> tuple[Carry, jax.Array]:
        batch, time = x.shape[:2]
        if carry is None:
            carry = self.initial_state(batch)
        if resets is None:
            resets = jnp.zeros((batch, time), bool)
        features = self.encoder(x.reshape((batch * time,) + x.shape[2:]))
        features = features.reshape((batch, time) + features.shape[1:])
        carry, outputs = self.core_sequence(carry, features, jnp.asarray(resets, bool))
        return carry, self.head(outputs)


def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars (``nnx.Param`` leaves) in ``model``."""
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def compile_step(model: SequenceModel) -> tuple[Callable, Any]:
    """A jit-compiled policy step on split parameters: the cheap way to act in an env.

    Returns ``(step_fn, state)`` with ``step_fn(state, carry, x_t) -> (carry, logits)``.
    ``jax.jit`` over ``nnx.split`` state is ~10x cheaper per call than ``nnx.jit``.
    """
    graphdef, state = nnx.split(model)

    @jax.jit
    def step_fn(state, carry, x_t):
        return nnx.merge(graphdef, state).step(carry, x_t)

    return step_fn, state
