"""The vanilla RNN baseline: Flax NNX's own `nnx.SimpleCell` inside the harness.

``h_t = tanh(x_t W_i + h_{t-1} W_h + b)`` with ``x_t`` the encoder features ``[B, F]`` and
``h_t`` the hidden state ``[B, H]``; the action head reads ``h_t``.

Parameters of the core (hand-checkable, see tests/test_baselines.py):
``F*H`` (input kernel, no bias) ``+ H*H + H`` (recurrent kernel and its bias).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from tnd.models.base import SequenceModel
from tnd.models.encoders import make_io
from tnd.models.registry import register_model


class VanillaRNN(SequenceModel):
    """Encoder -> `nnx.SimpleCell` (tanh) -> linear action head. Carry: ``h [B, H]``."""

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        *,
        hidden_size: int,
        encoder_features: int = 32,
        rngs: nnx.Rngs,
    ):
        if hidden_size < 1:
            raise ValueError(f"rnn: hidden_size must be a positive integer, got {hidden_size!r}.")
        self.hidden_size = hidden_size
        self.encoder, self.head = make_io(obs_shape, encoder_features, hidden_size, num_actions, rngs=rngs)
        self.cell = nnx.SimpleCell(encoder_features, hidden_size, rngs=rngs)

    def initial_state(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.hidden_size), jnp.float32)

    def core_step(self, carry: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.cell(carry, features)


@register_model("rnn", width_option="hidden_size")
def build_rnn(
    *, obs_shape, num_actions, rngs: nnx.Rngs, hidden_size: int = 64, encoder_features: int = 32
) -> VanillaRNN:
    return VanillaRNN(
        obs_shape, num_actions, hidden_size=hidden_size, encoder_features=encoder_features, rngs=rngs
    )
