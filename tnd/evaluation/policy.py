"""Model -> policy adapter for closed-loop evaluation.

A policy has ``initial_state(batch) -> carry`` and ``act(carry, obs [B, ...], reset [B]
bool) -> (carry, actions [B] np.int)``. `GreedyModelPolicy` wraps any `SequenceModel`:
one jit-compiled call per batched step resets the carry rows of games that just started,
runs ``model.step`` and takes the argmax action.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tnd.models.base import SequenceModel, compile_step, reset_carry


class GreedyModelPolicy:
    """Greedy actions of a `SequenceModel` acting from its recurrent state."""

    def __init__(self, model: SequenceModel):
        step_fn, self._state = compile_step(model)
        self._model = model
        self._initial: dict[int, object] = {}

        @jax.jit
        def act(state, carry, initial, obs, reset):
            carry = reset_carry(carry, initial, reset)
            carry, logits = step_fn(state, carry, obs)
            return carry, jnp.argmax(logits, axis=-1)

        self._act = act

    def initial_state(self, batch_size: int):
        if batch_size not in self._initial:
            self._initial[batch_size] = self._model.initial_state(batch_size)
        return self._initial[batch_size]

    def act(self, carry, obs: np.ndarray, reset: np.ndarray):
        initial = self.initial_state(obs.shape[0])
        carry, actions = self._act(self._state, carry, initial, jnp.asarray(obs), jnp.asarray(reset, bool))
        return carry, np.asarray(actions)
