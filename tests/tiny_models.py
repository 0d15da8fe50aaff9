"""A minimal harness model shared by the env tests: MLP encoder, nnx.SimpleCell core, linear head
(random weights: a student that plays badly)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from tnd.envs.pong import NUM_ACTIONS
from tnd.models.base import SequenceModel
from tnd.models.encoders import make_io


class TinyRNN(SequenceModel):
    """Pong observations ``[B, 5]`` -> logits ``[B, 3]`` through an ``hidden``-unit SimpleCell."""

    def __init__(self, hidden: int = 8, *, rngs: nnx.Rngs):
        self.hidden = hidden
        self.encoder, self.head = make_io((5,), 8, hidden, NUM_ACTIONS, rngs=rngs)
        self.cell = nnx.SimpleCell(8, hidden, rngs=rngs)

    def initial_state(self, batch_size):
        return jnp.zeros((batch_size, self.hidden))

    def core_step(self, carry, features):
        return self.cell(carry, features)
