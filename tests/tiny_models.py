"""A minimal harness model shared by the tests: MLP encoder, nnx.SimpleCell core, linear head
(random weights: a student that plays badly)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from tnd.envs.pong import NUM_ACTIONS
from tnd.models.base import SequenceModel
from tnd.models.encoders import make_io


class TinyRNN(SequenceModel):
    """Observations ``[B, *obs_shape]`` -> logits ``[B, num_actions]``: an MLP encoder to
    ``features``, an ``hidden``-unit SimpleCell, a linear head (defaults: Pong's)."""

    def __init__(self, hidden: int = 8, *, rngs: nnx.Rngs, obs_shape: tuple[int, ...] = (5,), features: int = 8,
                 num_actions: int = NUM_ACTIONS):
        self.hidden = hidden
        self.encoder, self.head = make_io(obs_shape, features, hidden, num_actions, rngs=rngs)
        self.cell = nnx.SimpleCell(features, hidden, rngs=rngs)

    def initial_state(self, batch_size):
        return jnp.zeros((batch_size, self.hidden))

    def core_step(self, carry, features):
        return self.cell(carry, features)
