"""Demonstrations of the analytic expert on single-player Pong, collected inside ``jit``.

The games are played by `tnd.envs.rollout.rollout` (``vmap`` over games, one ``lax.scan``
over ``config.max_steps`` steps; `tnd.envs.batched_games.collect_expert_games` runs it in
batches). Each game is one episode of exactly ``max_steps`` steps (the step cap is the
only end), so every episode has the same length.

Per step ``t`` the record holds the observation seen *before* acting, the expert's label
for it, the action actually taken (with probability ``epsilon`` a uniformly random
action, which may equal the label: the clone sees recoveries while the label stays the
expert's), and the reward / catch / miss that the step produced.

Game ``e`` is seeded by ``seeds[e]`` from `tnd.envs.pong.env.game_seeds` (collection
stream), so it can be replayed alone and never coincides with an evaluation game of the
same run seed.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from tnd.envs.demonstrations import Demonstrations, demonstrations_from_games
from tnd.envs.batched_games import collect_expert_games, collect_mixed_games
from tnd.envs.pong.env import COLLECT_STREAM, PongConfig, PongConfigError, game_seeds
from tnd.envs.pong.events import step_events
from tnd.envs.pong.expert import DEFAULT_AIM, DEFAULT_DEADBAND
from tnd.envs.pong.perturb import env_for, game_expert

DEFAULT_BATCH = 1024  # games per jitted call: bounds host memory ([B, T, 5] float32 per call)


def collect_demonstrations(
    config: PongConfig,
    *,
    num_episodes: int,
    seed: int,
    epsilon: float = 0.0,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
    aim: float = DEFAULT_AIM,
    deadband: float = DEFAULT_DEADBAND,
) -> Demonstrations:
    """Expert demonstrations: ``num_episodes`` games of ``config.max_steps`` steps each.

    Returns `Demonstrations` with ``S = num_episodes * max_steps`` steps: observations
    ``[S, 5]`` float32, expert labels and taken actions ``[S]`` int32, rewards ``[S]``
    float32, catches/misses ``[S]`` bool, ``episode_starts`` ``[E]`` and per-game
    ``seeds`` ``[E]`` int64. ``metadata`` holds env="pong", obs_mode="objects", the
    config, the expert settings, ``epsilon`` and ``seed``. Deterministic per ``seed``.
    """
    if not 0.0 <= float(epsilon) <= 1.0:
        raise PongConfigError(f"epsilon={epsilon} must lie in [0, 1] (probability of a random action).")
    if int(batch_size) < 1:
        raise PongConfigError(f"batch_size={batch_size} must be >= 1.")
    seeds = game_seeds(seed, num_episodes, COLLECT_STREAM)
    env, params = env_for(config)  # perturbations change what is recorded and executed, not the labels
    games = collect_expert_games(
        env, params, seeds, steps=int(config.max_steps), expert=game_expert(env),
        expert_args=(jnp.float32(aim), jnp.float32(deadband)), epsilon=epsilon, events=step_events,
        batch_size=int(batch_size), progress=progress, desc="pong demos",
    )
    return demonstrations_from_games(games, seeds, metadata={
        "env": "pong",
        "obs_mode": "objects",
        "config": config.to_dict(),
        "expert": {"name": "analytic", "aim": float(aim), "deadband": float(deadband)},
        "epsilon": float(epsilon),
        "seed": int(seed),
    })


def collect_mixed(
    config: PongConfig,
    model,
    *,
    beta: float,
    num_episodes: int,
    seed: int,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
    aim: float = DEFAULT_AIM,
    deadband: float = DEFAULT_DEADBAND,
) -> Demonstrations:
    """DAgger's data: ``num_episodes`` games in which a harness ``model`` (the student,
    greedy) acts, except that with probability ``beta`` per step the expert's action is
    executed; the expert labels every visited state.

    The games are those of `collect_demonstrations` for the same ``seed`` (collection
    stream); with ``beta = 1`` the data equal its data with ``epsilon = 0``. Returns
    `Demonstrations` as there (``actions``: the expert's labels, ``taken_actions``: the
    executed actions); ``metadata`` adds ``beta`` and ``student_agreement``, the share of
    steps where the student's own choice equals the label.
    """
    if not 0.0 <= float(beta) <= 1.0:
        raise PongConfigError(f"beta={beta} must lie in [0, 1] (probability of executing the expert's action).")
    if int(batch_size) < 1:
        raise PongConfigError(f"batch_size={batch_size} must be >= 1.")
    seeds = game_seeds(seed, num_episodes, COLLECT_STREAM)
    env, params = env_for(config)
    games, student = collect_mixed_games(
        model, env, params, seeds, steps=int(config.max_steps), expert=game_expert(env),
        expert_args=(jnp.float32(aim), jnp.float32(deadband)), beta=float(beta), events=step_events,
        batch_size=int(batch_size), progress=progress, desc="pong dagger",
    )
    labels = np.concatenate([np.asarray(game.labels) for game in games])
    return demonstrations_from_games(games, seeds, metadata={
        "env": "pong",
        "obs_mode": "objects",
        "config": config.to_dict(),
        "expert": {"name": "analytic", "aim": float(aim), "deadband": float(deadband)},
        "epsilon": 0.0,
        "seed": int(seed),
        "beta": float(beta),
        "student_agreement": float(np.mean(student.reshape(-1) == labels)),
    })
