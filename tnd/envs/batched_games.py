"""Games of a JAX environment played in jitted batches: expert demonstrations, greedy evaluation, recordings.

Every function here plays ``G = len(seeds)`` games (game ``g`` from
``jax.random.key(seeds[g])``, int32 seeds) of ``steps`` steps through the one
`tnd.envs.rollout.rollout`, ``batch_size`` games per jitted call, and hands back NumPy:

* `collect_expert_games`  the expert labels every step, an ``epsilon`` share of random
  actions is executed: one `Trajectory` per game (leaves ``[T, ...]``, no states);
* `collect_mixed_games`  DAgger's games: the expert labels every step, the executed action
  mixes the expert's (probability ``beta``) and a student model's; also the student's choices;
* `evaluate_model_games` / `evaluate_expert_games`  greedy play: the env's `Tally`;
* `record_model_games`  greedy play of one batch with its `Trajectory` ``[G, T, ...]``
  (states included: what an animation draws).

The compiled programs are cached per (env, expert or model structure, events, ``steps``,
batch size): the env parameters are traced, so one compile serves every env config.
``env``, ``expert`` and ``events`` are static arguments: pass module-level objects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from tnd.envs.policies import epsilon_expert_policy, expert_policy, greedy_model_policy, mixed_policy
from tnd.envs.rollout import Events, Trajectory, rollout
from tnd.envs.tally import Tally


class PlayError(ValueError):
    """Invalid play settings (batch size, perturbation probability)."""


# With no batch size, one jitted call plays at most about this many game-steps (games x steps):
# a long evaluation then reports progress batch by batch and its device memory stays bounded.
GAME_STEPS_PER_CALL = 1 << 20


def _chunks(seeds: np.ndarray, batch_size: int | None, steps: int | None = None) -> Iterator[np.ndarray]:
    """``seeds`` in batches of ``batch_size`` games; None: all at once, unless that is more
    than `GAME_STEPS_PER_CALL` game-steps of ``steps`` each (then equal batches below it)."""
    batch = len(seeds) if batch_size is None else int(batch_size)
    if batch < 1:
        raise PlayError(f"batch_size={batch_size} must be >= 1 (or None for all games at once).")
    if batch_size is None and steps and len(seeds) * int(steps) > GAME_STEPS_PER_CALL:
        calls = -(-len(seeds) * int(steps) // GAME_STEPS_PER_CALL)
        batch = -(-len(seeds) // calls)
    for start in range(0, len(seeds), batch):
        yield seeds[start:start + batch]


def split_games(trajectory: Trajectory) -> list[Trajectory]:
    """A games-first `Trajectory` ``[G, T, ...]`` -> one `Trajectory` ``[T, ...]`` per game (views)."""
    games = len(trajectory.labels)
    return [jax.tree.map(lambda x, g=g: x[g], trajectory) for g in range(games)]


@functools.partial(jax.jit, static_argnames=("env", "expert", "events", "steps"))
def _expert_demonstration_batch(env, expert, events, steps, params, seeds, epsilon, expert_args):
    keys = jax.vmap(jax.random.key)(seeds)
    policy = epsilon_expert_policy(expert, params, expert_args, epsilon, env.num_actions)
    _, trajectory = rollout(env, policy, keys, params, steps, events=events, record=True)
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), trajectory.replace(states=None))


def collect_expert_games(
    env: Any, params: Any, seeds: np.ndarray, *, steps: int, expert: Callable, expert_args: tuple = (),
    epsilon: float = 0.0, events: Events, batch_size: int | None = 1024, progress: bool = True, desc: str = "demos",
) -> list[Trajectory]:
    """The expert's games, every step recorded: one `Trajectory` per game (NumPy ``[T, ...]``).

    ``expert(state, params, *expert_args)`` -> int32 action of one game; executed actions
    are uniformly random with probability ``epsilon`` (`epsilon_expert_policy`).
    """
    if not 0.0 <= float(epsilon) <= 1.0:
        raise PlayError(f"epsilon={epsilon} must lie in [0, 1] (probability of a random action).")
    games: list[Trajectory] = []
    with tqdm(total=len(seeds), desc=desc, unit="game", disable=not progress) as bar:
        for chunk in _chunks(np.asarray(seeds), batch_size):
            out = _expert_demonstration_batch(
                env, expert, events, int(steps), params, jnp.asarray(chunk, jnp.int32), jnp.float32(epsilon),
                expert_args,
            )
            games.extend(split_games(jax.device_get(out)))
            bar.update(len(chunk))
    return games


@functools.partial(jax.jit, static_argnames=("env", "expert", "events", "graphdef", "steps"))
def _mixed_batch(env, expert, events, graphdef, steps, model_state, params, seeds, beta, expert_args):
    keys = jax.vmap(jax.random.key)(seeds)
    policy = mixed_policy(expert, params, expert_args, beta, graphdef, model_state)
    _, trajectory = rollout(env, policy, keys, params, steps, events=events, record=True)
    labels, student = trajectory.labels
    trajectory = trajectory.replace(labels=labels, states=None)
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), trajectory), jnp.swapaxes(student, 0, 1)


def collect_mixed_games(
    model: nnx.Module, env: Any, params: Any, seeds: np.ndarray, *, steps: int, expert: Callable,
    expert_args: tuple = (), beta: float, events: Events, batch_size: int | None = 1024, progress: bool = True,
    desc: str = "dagger",
) -> tuple[list[Trajectory], np.ndarray]:
    """DAgger's games (`mixed_policy`): one `Trajectory` per game (NumPy ``[T, ...]``, labels
    the expert's, actions the executed ones) and the student's greedy choices ``[G, T]`` int32
    on the same steps. The model plays greedily (``model.eval()`` first)."""
    if not 0.0 <= float(beta) <= 1.0:
        raise PlayError(f"beta={beta} must lie in [0, 1] (probability of executing the expert's action).")
    model.eval()
    graphdef, model_state = nnx.split(model)
    games: list[Trajectory] = []
    student: list[np.ndarray] = []
    with tqdm(total=len(seeds), desc=desc, unit="game", disable=not progress) as bar:
        for chunk in _chunks(np.asarray(seeds), batch_size):
            out, own = jax.device_get(_mixed_batch(
                env, expert, events, graphdef, int(steps), model_state, params, jnp.asarray(chunk, jnp.int32),
                jnp.float32(beta), expert_args,
            ))
            games.extend(split_games(out))
            student.append(np.asarray(own, np.int32))
            bar.update(len(chunk))
    return games, np.concatenate(student)


@functools.partial(jax.jit, static_argnames=("env", "events", "graphdef", "steps", "record"))
def _greedy_model_batch(env, events, graphdef, steps, record, model_state, params, seeds):
    keys = jax.vmap(jax.random.key)(seeds)
    return rollout(env, greedy_model_policy(graphdef, model_state), keys, params, steps, events=events, record=record)


@functools.partial(jax.jit, static_argnames=("env", "expert", "events", "steps"))
def _expert_batch(env, expert, events, steps, params, seeds, expert_args):
    keys = jax.vmap(jax.random.key)(seeds)
    counts, _ = rollout(env, expert_policy(expert, params, expert_args), keys, params, steps, events=events)
    return counts


def _tally_in_batches(play: Callable[[jax.Array], dict], seeds: np.ndarray, tally: type[Tally],
                      batch_size: int | None, progress: bool, desc: str, steps: int | None = None) -> Tally:
    parts = []
    with tqdm(total=len(seeds), desc=desc, unit="game", disable=not progress) as bar:
        for chunk in _chunks(np.asarray(seeds), batch_size, steps):
            parts.append(tally.from_counts(jax.device_get(play(jnp.asarray(chunk, jnp.int32)))))
            bar.update(len(chunk))
    return tally.concatenate(parts)


def evaluate_model_games(
    model: nnx.Module, env: Any, params: Any, seeds: np.ndarray, *, steps: int, events: Events, tally: type[Tally],
    batch_size: int | None = None, progress: bool = False, desc: str = "eval",
) -> Tally:
    """Greedy closed-loop play of a harness model (`greedy_model_policy`): one ``tally`` entry per game."""
    graphdef, model_state = nnx.split(model)

    def play(chunk):
        return _greedy_model_batch(env, events, graphdef, int(steps), False, model_state, params, chunk)[0]

    return _tally_in_batches(play, seeds, tally, batch_size, progress, desc, steps)


def evaluate_expert_games(
    env: Any, params: Any, seeds: np.ndarray, *, steps: int, expert: Callable, expert_args: tuple = (),
    events: Events, tally: type[Tally], batch_size: int | None = None, progress: bool = False, desc: str = "expert",
) -> Tally:
    """The expert played like `evaluate_model_games` (same games per seed, no perturbations)."""

    def play(chunk):
        return _expert_batch(env, expert, events, int(steps), params, chunk, expert_args)

    return _tally_in_batches(play, seeds, tally, batch_size, progress, desc, steps)


def record_model_games(
    model: nnx.Module, env: Any, params: Any, seeds: Sequence[int], *, steps: int, events: Events, tally: type[Tally],
) -> tuple[Tally, Trajectory]:
    """`evaluate_model_games`'s games in one batch, with their `Trajectory` as NumPy, games first ``[G, T, ...]``."""
    graphdef, model_state = nnx.split(model)
    counts, trajectory = jax.device_get(_greedy_model_batch(
        env, events, graphdef, int(steps), True, model_state, params, jnp.asarray(seeds, jnp.int32),
    ))
    return tally.from_counts(counts), jax.tree.map(lambda x: np.swapaxes(np.asarray(x), 0, 1), trajectory)
