"""Closed-loop evaluation on single-player Pong, each batch of games in one jitted call.

A batch of ``G`` games is one `tnd.envs.rollout.rollout`: a ``lax.scan`` over
``max_steps`` steps whose body runs the policy on the whole batch (``model.step`` on
``[G, 5]`` observations, greedy argmax) and the environment ``vmap``-ed over games. Every
game is one episode of exactly ``config.max_steps`` steps. The tallies (`CatchTally`, one
entry per game, counted by `tnd.envs.pong.events.step_events`) are accumulated in the
scan carry, so nothing of size ``T x G`` is stored.

Single-player tallies: ``catches``, ``misses``; ``rounds`` = completed rounds (ended by a
miss or by reaching the catch cap; the round cut off by the end of the game is not
counted) and ``catches_in_rounds`` their catches; ``points_won`` = rounds that reached
the catch cap; ``points_lost`` = misses; ``steps`` = steps played.

Games are seeded by `tnd.envs.pong.env.game_seeds` (evaluation stream), so ``seed`` fixes
every serve; the same seed gives the same tallies. `record_model` also returns the
games' `Trajectory` (the state after every step and the step's counted events: what the
animation of `tnd.evaluation.render` draws); the tallies are exactly its events' sums.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from tnd.envs.catch_tally import CatchTally
from tnd.envs.batched_games import evaluate_expert_games, evaluate_model_games, record_model_games
from tnd.envs.pong.env import EVAL_STREAM, PongConfig, game_seeds
from tnd.envs.pong.events import step_events
from tnd.envs.pong.expert import DEFAULT_AIM, DEFAULT_DEADBAND
from tnd.envs.pong.perturb import env_for, game_expert, game_states
from tnd.envs.rollout import Trajectory


def evaluate_model(
    model: nnx.Module,
    config: PongConfig,
    *,
    num_games: int,
    seed: int,
    progress: bool = True,
    batch_size: int | None = None,
) -> CatchTally:
    """Greedy closed-loop play of a harness model for ``num_games`` games of ``config.max_steps`` steps.

    The model acts from its recurrent state: ``model.step(carry, obs [G, 5])`` on the whole
    batch, action = argmax of the logits. ``batch_size`` games share one jitted call
    (default: all of them); the compiled function is cached per (model structure, batch,
    ``max_steps``). Returns one `CatchTally` entry per game.
    """
    return evaluate_model_games(
        model, *env_for(config), game_seeds(seed, num_games, EVAL_STREAM), steps=int(config.max_steps),
        events=step_events, tally=CatchTally, batch_size=batch_size, progress=progress, desc="pong eval",
    )


def record_model(model: nnx.Module, config: PongConfig, *, num_games: int, seed: int) -> tuple[CatchTally, Trajectory]:
    """`evaluate_model`'s games (same seeds, same greedy play, one batch) with their `Trajectory`.

    The trajectory is NumPy, games first ``[G, T, ...]`` (``T = max_steps``): ``states`` a
    `PongState` (after each step; the game's own state under perturbations) and ``events``
    one int array per tally field.
    """
    tally, trajectory = record_model_games(
        model, *env_for(config), game_seeds(seed, num_games, EVAL_STREAM),
        steps=int(config.max_steps), events=step_events, tally=CatchTally,
    )
    return tally, trajectory.replace(states=game_states(trajectory.states))


def evaluate_expert(
    config: PongConfig,
    *,
    num_games: int,
    seed: int,
    aim: float = DEFAULT_AIM,
    deadband: float = DEFAULT_DEADBAND,
    progress: bool = False,
    batch_size: int | None = None,
) -> CatchTally:
    """The analytic expert (`tnd.envs.pong.expert`) played like `evaluate_model` (same games per seed)."""
    env, params = env_for(config)
    return evaluate_expert_games(
        env, params, game_seeds(seed, num_games, EVAL_STREAM), steps=int(config.max_steps),
        expert=game_expert(env), expert_args=(jnp.float32(aim), jnp.float32(deadband)), events=step_events,
        tally=CatchTally, batch_size=batch_size, progress=progress, desc="pong expert",
    )
