"""Single-player Pong's evaluation games drawn frame by frame: the env's ``draw_games``.

`tnd.envs.pong.record_model` plays the games in one jitted rollout (`tnd.envs.rollout.rollout`)
and returns their trajectory, the state after every step included;
`tnd.envs.pong.render.render_frames` draws them (`PIXELS_PER_UNIT` pixels per court unit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from tnd.envs.recording import CATCH_COUNTS, Recording, running_counts

PIXELS_PER_UNIT = 160  # native Pong frame: 173 x 173 pixels (28 header characters wide)
FPS = 20  # a rally (paddle -> wall -> paddle, ~16 steps) in under a second


def draw_games(model, config, *, games: int, seed: int, steps: int, progress: bool = False,
               pixels_per_unit: int = PIXELS_PER_UNIT) -> Recording:
    """``games`` evaluation games of ``seed`` (`PongConfig`), ``steps`` steps each, as frames
    ``[games * steps, H, W, 3]`` (one jitted call: ``progress`` shows nothing)."""
    import jax

    from tnd.envs.pong import EVAL_STREAM, game_seeds, record_model, to_params
    from tnd.envs.pong.render import render_frames

    config = dataclasses.replace(config, max_steps=int(steps))
    _, trajectory = record_model(model, config, num_games=games, seed=seed)
    states = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), trajectory.states)  # [G, T] -> [G * T]
    return Recording(
        env="pong",
        frames=render_frames(states, to_params(config), pixels_per_unit),
        game=np.repeat(np.arange(games), steps),
        step=np.tile(np.arange(1, steps + 1), games),
        counts=running_counts(trajectory.events, CATCH_COUNTS),
        seeds=tuple(int(s) for s in game_seeds(seed, games, EVAL_STREAM)),
        fps=FPS,
    )


def describe_counts(counts: Mapping[str, int]) -> str:
    """The counts line of a frame: ``"catches 3  misses 1"``."""
    return f"catches {counts['catches']}  misses {counts['misses']}"
