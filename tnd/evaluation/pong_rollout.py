"""Closed-loop evaluation on single-player Pong, each batch of games in one jitted call.

A batch of ``G`` games is one ``lax.scan`` over ``max_steps`` time steps whose body runs
the policy on the whole batch (``model.step`` on ``[G, 5]`` observations, greedy argmax)
and the environment ``vmap``-ed over games. Every game is one episode of exactly
``config.max_steps`` steps; a per-game ``alive`` mask stops the counting once a game is
done (with the step cap as the only end, that is the last step). The tallies
(`tnd.evaluation.metrics.GameTally`, one entry per game) are accumulated in the scan
carry, so nothing of size ``T x G`` is stored.

Single-player tallies: ``catches``, ``misses``; ``rounds`` = completed rounds (ended by a
miss or by reaching the catch cap; the round cut off by the end of the game is not
counted) and ``catches_in_rounds`` their catches; ``points_won`` = rounds that reached
the catch cap; ``points_lost`` = misses; ``steps`` = steps played.

Games are seeded by `tnd.envs.pong.game_seeds` (evaluation stream), so ``seed`` fixes
every serve; the same seed gives the same tallies.

``record=True`` (`play_games`, `record_model`) also returns the per-step trace: the state
after every step and the step's counted events, ``[T, G]`` (what the animation of
`tnd.evaluation.render` draws); the tallies are exactly the trace's sums over time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from tnd.envs.pong import EVAL_STREAM, PongConfig, PongConfigError, PongParams, SinglePlayerPong, game_seeds, step_key, to_params
from tnd.envs.pong_expert import DEFAULT_AIM, DEFAULT_DEADBAND, expert_action
from tnd.evaluation.metrics import GameTally
from tnd.models.base import SequenceModel

_ENV = SinglePlayerPong()  # stateless: everything that varies lives in the params pytree
_TALLY_FIELDS = ("catches", "misses", "rounds", "catches_in_rounds", "points_won", "points_lost", "steps")

# policy(carry, obs [G, 5], env_state batch) -> (carry, actions [G] int32)
Policy = Callable[[Any, jax.Array, Any], tuple[Any, jax.Array]]


def play_games(
    policy: Policy, carry: Any, params: PongParams, seeds: jax.Array, max_steps: int, *, record: bool = False,
) -> dict[str, jax.Array] | tuple[dict[str, jax.Array], dict[str, Any]]:
    """Plays ``G = len(seeds)`` games for ``max_steps`` steps; returns int32 tallies ``[G]``.

    Traceable (call it inside ``jit``): one scan over time, env ``vmap``-ed over games.
    ``record`` (static) also returns the trace ``{"state": PongState with leaves [T, G],
    <tally field>: int32 [T, G]}``: the state after each step and that step's events as
    counted in the tallies (so ``trace[k].sum(0) == tally[k]``).
    """
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.int32))
    obs, states = jax.vmap(_ENV.reset_env, (0, None))(keys, params)
    games = keys.shape[0]
    tally = {name: jnp.zeros((games,), jnp.int32) for name in _TALLY_FIELDS}
    vstep = jax.vmap(_ENV.step_env, (0, 0, 0, None))

    def body(c, t):
        states, obs, carry, tally, alive = c
        carry, actions = policy(carry, obs, states)
        step_keys = jax.vmap(step_key, (0, None))(keys, t)
        obs, states, _, done, info = vstep(step_keys, states, actions, params)
        live = alive.astype(jnp.int32)
        round_over = info["round_over"].astype(jnp.int32) * live
        events = {
            "catches": info["catch"].astype(jnp.int32) * live,
            "misses": info["miss"].astype(jnp.int32) * live,
            "rounds": round_over,
            "catches_in_rounds": info["round_catches"] * round_over,
            "points_won": info["capped"].astype(jnp.int32) * live,
            "points_lost": info["miss"].astype(jnp.int32) * live,
            "steps": live,
        }
        tally = {k: tally[k] + events[k] for k in tally}
        trace = {"state": states, **events} if record else None
        return (states, obs, carry, tally, alive & ~done), trace

    init = (states, obs, carry, tally, jnp.ones((games,), bool))
    (_, _, _, tally, _), trace = jax.lax.scan(body, init, jnp.arange(max_steps, dtype=jnp.int32))
    return (tally, trace) if record else tally


@functools.partial(jax.jit, static_argnames=("graphdef", "max_steps", "record"))
def _play_model(graphdef, model_state, params, seeds, max_steps, record=False):
    carry = nnx.merge(graphdef, model_state).initial_state(seeds.shape[0])

    def policy(carry, obs, _states):
        carry, logits = nnx.merge(graphdef, model_state).step(carry, obs)
        return carry, jnp.argmax(logits, axis=-1).astype(jnp.int32)

    return play_games(policy, carry, params, seeds, max_steps, record=record)


@functools.partial(jax.jit, static_argnames=("max_steps",))
def _play_expert(params, seeds, aim, deadband, max_steps):
    def policy(carry, _obs, states):
        return carry, jax.vmap(expert_action, (0, None, None, None))(states, params, aim, deadband)

    return play_games(policy, jnp.zeros(()), params, seeds, max_steps)


def _run_batches(play: Callable[[np.ndarray], dict], seeds: np.ndarray, batch_size: int | None, progress: bool, desc: str) -> GameTally:
    batch = len(seeds) if batch_size is None else int(batch_size)
    if batch < 1:
        raise PongConfigError(f"batch_size={batch_size} must be >= 1 (or None for all games at once).")
    tallies = []
    with tqdm(total=len(seeds), desc=desc, unit="game", disable=not progress) as bar:
        for start in range(0, len(seeds), batch):
            chunk = seeds[start:start + batch]
            out = jax.device_get(play(chunk))
            tallies.append(GameTally(**{k: np.asarray(out[k], np.int64) for k in _TALLY_FIELDS}))
            bar.update(len(chunk))
    return GameTally.concatenate(tallies)


def evaluate_model(
    model: SequenceModel,
    config: PongConfig,
    *,
    num_games: int,
    seed: int,
    progress: bool = True,
    batch_size: int | None = None,
) -> GameTally:
    """Greedy closed-loop play of ``model`` for ``num_games`` games of ``config.max_steps`` steps.

    The model acts from its recurrent state: ``model.step(carry, obs [G, 5])`` on the whole
    batch, action = argmax of the logits. ``batch_size`` games share one jitted call
    (default: all of them); the compiled function is cached per (model structure, batch,
    ``max_steps``). Returns one `GameTally` entry per game.
    """
    graphdef, model_state = nnx.split(model)
    params = to_params(config)
    seeds = game_seeds(seed, num_games, EVAL_STREAM)

    def play(chunk):
        return _play_model(graphdef, model_state, params, jnp.asarray(chunk, jnp.int32), max_steps=int(config.max_steps))

    return _run_batches(play, seeds, batch_size, progress, "pong eval")


def record_model(model: SequenceModel, config: PongConfig, *, num_games: int, seed: int) -> tuple[GameTally, dict[str, Any]]:
    """`evaluate_model`'s games (same seeds, same greedy play, one batch) with their trace.

    Returns the `GameTally` and the trace as NumPy arrays, games first: ``"state"`` a
    `PongState` with leaves ``[G, T]`` (the state after each of the ``T = max_steps``
    steps) and one ``[G, T]`` int array per tally field (that step's counted events).
    """
    graphdef, model_state = nnx.split(model)
    seeds = game_seeds(seed, num_games, EVAL_STREAM)
    tally, trace = jax.device_get(_play_model(
        graphdef, model_state, to_params(config), jnp.asarray(seeds, jnp.int32),
        max_steps=int(config.max_steps), record=True,
    ))
    tally = GameTally(**{k: np.asarray(tally[k], np.int64) for k in _TALLY_FIELDS})
    return tally, jax.tree.map(lambda x: np.swapaxes(np.asarray(x), 0, 1), trace)


def evaluate_expert(
    config: PongConfig,
    *,
    num_games: int,
    seed: int,
    aim: float = DEFAULT_AIM,
    deadband: float = DEFAULT_DEADBAND,
    progress: bool = False,
    batch_size: int | None = None,
) -> GameTally:
    """The analytic expert (`tnd.envs.pong_expert`) played like `evaluate_model` (same games per seed)."""
    params = to_params(config)
    seeds = game_seeds(seed, num_games, EVAL_STREAM)

    def play(chunk):
        return _play_expert(params, jnp.asarray(chunk, jnp.int32), jnp.float32(aim), jnp.float32(deadband), max_steps=int(config.max_steps))

    return _run_batches(play, seeds, batch_size, progress, "pong expert")
