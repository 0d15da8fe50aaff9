"""Action and observation spaces with gymnax's interface (``spaces.Discrete``, ``Box``, ``Dict``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


class Discrete:
    """``{0, ..., n - 1}`` (gymnax ``spaces.Discrete``)."""

    def __init__(self, num_categories: int):
        self.n = int(num_categories)
        self.shape: tuple[int, ...] = ()
        self.dtype = jnp.int32

    def sample(self, rng: jax.Array) -> jax.Array:
        return jax.random.randint(rng, self.shape, 0, self.n).astype(self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        return jnp.logical_and(x >= 0, x < self.n)


class Box:
    """A box ``[low, high]^shape`` (gymnax ``spaces.Box``)."""

    def __init__(self, low, high, shape: tuple[int, ...], dtype=jnp.float32):
        self.low, self.high, self.shape, self.dtype = low, high, tuple(shape), dtype

    def sample(self, rng: jax.Array) -> jax.Array:
        return jax.random.uniform(rng, self.shape, minval=self.low, maxval=self.high).astype(self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        return jnp.logical_and(jnp.all(x >= self.low), jnp.all(x <= self.high))


class Dict:
    """A dictionary of spaces (gymnax ``spaces.Dict``)."""

    def __init__(self, spaces: dict):
        self.spaces = spaces
        self.num_spaces = len(spaces)
