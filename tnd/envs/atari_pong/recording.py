"""Atari Pong's evaluation games drawn frame by frame: the env's ``draw_games``.

`tnd.envs.atari_pong.evaluate_model` plays them, one game after another on one emulator,
and the ``on_step`` hook of its host rollout keeps ALE's RGB screen ``[210, 160, 3]`` and
the counted events of every step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from tnd.envs.recording import CATCH_COUNTS, Recording

FRAMES_PER_SECOND = 60  # the emulator's rate: animations play in real time (60 / frameskip)


def draw_games(model, config, *, games: int, seed: int, steps: int, progress: bool = False) -> Recording:
    """``games`` evaluation games of ``seed`` (`AtariPongConfig`), up to ``steps`` steps each.

    A game that ends (21 points) before ``steps`` has fewer frames.
    """
    from tqdm.auto import tqdm

    from tnd.envs.atari_pong.env import game_seed
    from tnd.envs.atari_pong.evaluate import evaluate_model
    from tnd.envs.pong.render import PROGRESS_DELAY

    config = dataclasses.replace(config, max_steps=int(steps))
    screens: list[list[np.ndarray]] = [[] for _ in range(games)]
    events: list[dict[str, list[int]]] = [{k: [] for k in CATCH_COUNTS} for _ in range(games)]
    bar = tqdm(total=games * steps, desc="atari play", unit="step", disable=not progress, delay=PROGRESS_DELAY)

    def grab(batch, stepped, game_of_row, reward, step_events):
        for row in np.flatnonzero(stepped):
            g = int(game_of_row[row])
            screens[g].append(batch.envs[row].unwrapped.ale.getScreenRGB())
            for key in CATCH_COUNTS:
                events[g][key].append(int(step_events[key][row]))
        bar.update(int(stepped.sum()))

    try:
        evaluate_model(model, config, num_games=games, seed=seed, num_envs=1, progress=False, on_step=grab)
    finally:
        bar.close()
    lengths = [len(s) for s in screens]
    return Recording(
        env="atari_pong",
        frames=np.concatenate([np.stack(s) for s in screens]).astype(np.uint8),
        game=np.repeat(np.arange(games), lengths),
        step=np.concatenate([np.arange(1, n + 1) for n in lengths]),
        counts={k: np.concatenate([np.cumsum(e[k], dtype=np.int64) for e in events]) for k in CATCH_COUNTS},
        seeds=tuple(game_seed(seed, g) for g in range(games)),
        fps=max(1, round(FRAMES_PER_SECOND / config.frameskip)),
    )


def describe_counts(counts: Mapping[str, int]) -> str:
    """The counts line of a frame: catches and the score, won - lost (``"catches 2  score -3 (1-4)"``)."""
    won, lost = counts["points_won"], counts["points_lost"]
    return f"catches {counts['catches']}  score {won - lost:+d} ({won}-{lost})"
