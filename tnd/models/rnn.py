"""Baselines that are Flax NNX's own recurrent cells inside the harness: `rnn` and `lstm`.

* ``rnn``:  `nnx.SimpleCell`, ``h_t = tanh(x_t W_i + h_{t-1} W_h + b)``, carry ``h [B, H]``;
  core parameters ``F*H`` (input kernel, no bias) ``+ H*H + H``.
* ``lstm``: `nnx.OptimizedLSTMCell`, carry ``(c, h)`` each ``[B, H]``; the four gates are
  fused into an input kernel ``[F, 4H]`` and a recurrent kernel ``[H, 4H]`` with bias, so
  the core has ``4 * (F*H + H*H + H)`` parameters (~15% faster than
  `nnx.LSTMCell` on CPU, same maths).

``x_t`` are the encoder features ``[B, F]``; the action head reads ``h_t``. Parameter
counts are hand-checked in tests/test_baselines.py.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from tnd.models.base import SequenceModel
from tnd.models.encoders import make_io
from tnd.models.registry import register_model


class FlaxCellModel(SequenceModel):
    """Encoder -> a Flax NNX recurrent cell -> linear action head.

    ``cell_factory(in_features, hidden_size, rngs=...)`` builds the cell; the carry has
    ``num_carry`` arrays ``[B, H]`` (1: a single array; 2: the LSTM's ``(c, h)`` tuple).
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        *,
        name: str,
        cell_factory: Callable[..., nnx.Module],
        num_carry: int,
        hidden_size: int,
        encoder_features: int = 32,
        rngs: nnx.Rngs,
    ):
        if not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"{name}: hidden_size must be a positive integer, got {hidden_size!r}.")
        self.hidden_size = hidden_size
        self.num_carry = num_carry
        self.encoder, self.head = make_io(obs_shape, encoder_features, hidden_size, num_actions, rngs=rngs)
        self.cell = cell_factory(encoder_features, hidden_size, rngs=rngs)

    def initial_state(self, batch_size: int):
        zeros = jnp.zeros((batch_size, self.hidden_size), jnp.float32)
        return zeros if self.num_carry == 1 else (zeros,) * self.num_carry

    def core_step(self, carry, features: jax.Array):
        return self.cell(carry, features)


@register_model("rnn", width_option="hidden_size")
def build_rnn(
    *, obs_shape, num_actions, rngs: nnx.Rngs, hidden_size: int = 64, encoder_features: int = 32
) -> FlaxCellModel:
    return FlaxCellModel(
        obs_shape, num_actions, name="rnn", cell_factory=nnx.SimpleCell, num_carry=1,
        hidden_size=hidden_size, encoder_features=encoder_features, rngs=rngs,
    )


@register_model("lstm", width_option="hidden_size")
def build_lstm(
    *, obs_shape, num_actions, rngs: nnx.Rngs, hidden_size: int = 64, encoder_features: int = 32
) -> FlaxCellModel:
    return FlaxCellModel(
        obs_shape, num_actions, name="lstm", cell_factory=nnx.OptimizedLSTMCell, num_carry=2,
        hidden_size=hidden_size, encoder_features=encoder_features, rngs=rngs,
    )
