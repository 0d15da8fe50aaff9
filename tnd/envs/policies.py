"""Policies that play environments: a harness model acting greedily, an expert with random perturbations.

For `tnd.envs.rollout.rollout` (JAX envs, traced inside ``jit``):

* `greedy_model_policy` a `SequenceModel` (split into ``graphdef`` and ``state``) acting
  from its recurrent state: ``model.step`` on the batch, action = argmax of the logits;
* `expert_policy` an expert ``expert(state, params, *args) -> action`` of one game, ``vmap``-ed;
* `epsilon_expert_policy` the same expert labelling every step while, with probability
  ``epsilon``, a uniformly random action is executed instead (the clone sees recoveries);
* `mixed_policy` DAgger's: the expert labels every step, the executed action is the
  expert's with probability ``beta`` and the student model's greedy one otherwise.

For host loops (Atari): `GreedyModelPolicy`, the greedy model one jitted call per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.envs.rollout import Policy


def greedy_model_policy(graphdef: Any, model_state: Any) -> Policy:
    """Greedy actions of the model ``nnx.merge(graphdef, model_state)``; its carry is the recurrent state."""

    def init(games: int):
        return nnx.merge(graphdef, model_state).initial_state(games)

    def act(carry, obs, _states, _keys):
        carry, logits = nnx.merge(graphdef, model_state).step(carry, obs)
        actions = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return carry, actions, actions

    return Policy(init, act)


def _batched(expert: Callable, num_args: int) -> Callable:
    return jax.vmap(expert, (0, None) + (None,) * num_args)


def expert_policy(expert: Callable, params: Any, expert_args: tuple = ()) -> Policy:
    """The expert's own action on every game (label = executed action); no carry, no keys."""
    batched = _batched(expert, len(expert_args))

    def act(carry, _obs, states, _keys):
        actions = batched(states, params, *expert_args)
        return carry, actions, actions

    return Policy(lambda games: jnp.zeros(()), act)


def epsilon_expert_policy(
    expert: Callable, params: Any, expert_args: tuple, epsilon: jax.Array, num_actions: int,
) -> Policy:
    """Labels: the expert's actions. Executed: with probability ``epsilon`` a uniformly
    random action (which may equal the label), else the label. Two uniforms per game and step."""
    batched = _batched(expert, len(expert_args))

    def act(carry, _obs, states, keys):
        labels = batched(states, params, *expert_args)
        noise = jax.vmap(lambda k: jax.random.uniform(k, (2,)))(keys)
        random_actions = jnp.minimum((noise[:, 1] * num_actions).astype(jnp.int32), num_actions - 1)
        taken = jnp.where(noise[:, 0] < epsilon, random_actions, labels)
        return carry, labels, taken

    return Policy(lambda games: jnp.zeros(()), act, draws_keys=True)


def mixed_policy(
    expert: Callable, params: Any, expert_args: tuple, beta: jax.Array, graphdef: Any, model_state: Any,
) -> Policy:
    """DAgger's mixture. Labels: the pair ``(expert [G], student [G])`` int32 (the expert's
    label and the student's own greedy choice, so its agreement can be counted); executed:
    the expert's action where a uniform draw is below ``beta``, else the student's. The draw
    is the first of two uniforms per game and step, as in `epsilon_expert_policy`, so the
    env sees the same keys: with ``beta = 1`` the games equal an expert collection's. The
    student steps on every observation (its carry follows the whole game)."""
    batched = _batched(expert, len(expert_args))
    student = greedy_model_policy(graphdef, model_state)

    def act(carry, obs, states, keys):
        carry, _, own = student.act(carry, obs, states, None)
        labels = batched(states, params, *expert_args)
        draw = jax.vmap(lambda k: jax.random.uniform(k, (2,)))(keys)[:, 0]
        taken = jnp.where(draw < beta, labels, own)
        return carry, (labels, own), taken

    return Policy(student.init, act, draws_keys=True)


class GreedyModelPolicy:
    """Greedy actions of a `SequenceModel` in a host loop, one jit-compiled call per batched step.

    ``initial_state(batch) -> carry``; ``act(carry, obs [B, ...], reset [B] bool) ->
    (carry, actions [B] np.int)``: the carry rows of games that just started are reset,
    then ``model.step`` runs and the argmax is taken.
    """

    def __init__(self, model):
        from tnd.models.base import compile_step, reset_carry  # the harness contract (models never import envs)

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
