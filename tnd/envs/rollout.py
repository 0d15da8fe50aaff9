"""The one rollout of JAX environments: games ``vmap``-ed, steps in one ``lax.scan``.

    counts, trajectory = rollout(env, policy, keys, params, steps, events=step_events, record=True)

Expert demonstrations and closed-loop evaluation are the same loop (PureJaxRL style): a
`Policy` acts on the batch of games, the env (gymnax interface: ``reset_env`` /
``step_env``, no auto-reset) steps every game, ``events(info)`` says what the step counts.

* **Keys.** Game ``g`` is played from ``keys[g]``; step ``t`` uses ``step_key(keys[g], t)``
  (``fold_in``: no key is carried through the scan). A policy that draws random numbers
  (``Policy.draws_keys``) gets the second half of that key's ``split`` and the env the
  first; a deterministic policy leaves the whole step key to the env.
* **Counting.** A game counts a step while it is alive: from its reset up to and
  including the step whose ``done`` is true (with a step cap as the only end, every one of
  ``steps = max_steps`` steps). ``counts[name]`` ``[G]`` int32 sums the step's
  ``events(info)[name]`` over the counted steps, in the scan carry (nothing of size
  ``T x G`` is kept unless ``record``).
* **Trajectory** (``record=True``, static): the per-step record, time-major ``[T, G, ...]``:
  the observation the policy saw, its label (an expert's action) and the executed action,
  the reward, the counted events and the env state after the step. The counts are exactly
  the recorded events summed over time.

Host-loop environments (Atari) fill the same `Trajectory` per game (``[T]``, no states)
and the same per-game counts (`tnd.envs.tally.Tally`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

# events(info) -> {name: [G] int/bool}: what one step of every game counts (the tally's fields).
Events = Callable[[dict[str, jax.Array]], dict[str, jax.Array]]


@struct.dataclass
class Trajectory:
    """Per-step record of games: time-major ``[T, G, ...]`` from `rollout`, ``[T, ...]`` per game elsewhere.

    ``observations`` ``[..., *obs]`` float32 seen before acting; ``labels`` int32 the
    policy's label (an expert's action); ``actions`` int32 executed; ``rewards`` float32;
    ``events`` ``{name: int}`` the step's counted events; ``states`` the env state after
    the step (JAX envs; ``None`` where not kept).
    """

    observations: Any
    labels: Any
    actions: Any
    rewards: Any
    events: dict[str, Any]
    states: Any = None


@dataclasses.dataclass(frozen=True)
class Policy:
    """How a batch of ``G`` games chooses its actions.

    ``init(G)`` -> carry (e.g. a model's recurrent state); ``act(carry, obs [G, *obs],
    states, keys)`` -> ``(carry, labels [G], actions [G])`` int32: the label to record and
    the action to execute (equal for a greedy policy; an expert with random perturbations
    labels its own choice and executes the perturbed one). ``states`` is the batched env
    state (experts read it); ``keys`` ``[G]`` are per-game keys when ``draws_keys``, else None.
    """

    init: Callable[[int], Any]
    act: Callable[[Any, jax.Array, Any, jax.Array | None], tuple[Any, jax.Array, jax.Array]]
    draws_keys: bool = False


def step_key(game_key: jax.Array, t: jax.Array) -> jax.Array:
    """The key of step ``t`` of a game (``fold_in``: no key carried through the scan)."""
    return jax.random.fold_in(game_key, t)


def rollout(
    env: Any, policy: Policy, keys: jax.Array, params: Any, steps: int, *, events: Events, record: bool = False,
) -> tuple[dict[str, jax.Array], Trajectory | None]:
    """Plays ``G = len(keys)`` games for ``steps`` (static) steps; traceable (call it inside ``jit``).

    Returns ``(counts, trajectory)``: ``counts[name]`` int32 ``[G]`` (the events of the
    counted steps, summed) and, with ``record``, the `Trajectory` ``[T, G, ...]`` (else None).
    """
    games = keys.shape[0]
    obs, states = jax.vmap(env.reset_env, (0, None))(keys, params)
    vstep = jax.vmap(env.step_env, (0, 0, 0, None))
    no_actions = jnp.zeros((games,), jnp.int32)
    names = jax.eval_shape(lambda k, s, p: events(vstep(k, s, no_actions, p)[4]), keys, states, params)
    counts = {name: jnp.zeros((games,), jnp.int32) for name in names}

    def body(c, t):
        states, obs, carry, counts, alive = c
        keys_t = jax.vmap(step_key, (0, None))(keys, t)
        if policy.draws_keys:
            env_keys, policy_keys = jnp.moveaxis(jax.vmap(jax.random.split)(keys_t), 1, 0)
        else:
            env_keys, policy_keys = keys_t, None
        carry, labels, actions = policy.act(carry, obs, states, policy_keys)
        next_obs, states, reward, done, info = vstep(env_keys, states, actions, params)
        live = alive.astype(jnp.int32)
        counted = {name: jnp.asarray(value).astype(jnp.int32) * live for name, value in events(info).items()}
        counts = {name: counts[name] + counted[name] for name in counts}
        trace = Trajectory(obs, labels, actions, reward, counted, states) if record else None
        return (states, next_obs, carry, counts, alive & ~done), trace

    init = (states, obs, policy.init(games), counts, jnp.ones((games,), bool))
    (_, _, _, counts, _), trajectory = jax.lax.scan(body, init, jnp.arange(steps, dtype=jnp.int32))
    return counts, trajectory
