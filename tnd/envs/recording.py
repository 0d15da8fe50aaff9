"""Played games as frames with their running counts: what an env's ``draw_games`` returns.

    recording = get_env("pong").draw_games(model, config, games=1, seed=7, steps=300, progress=False)
    recording.frames                      # [N, H, W, 3] uint8, games one after another
    get_env(recording.env).describe_counts(recording.final_counts())   # "catches 3  misses 1"

`tnd.evaluation.render` puts a header with these counts above every frame and writes the
animation; an env only plays and draws (`EnvDefinition.draw_games`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

CATCH_COUNTS = ("catches", "misses", "points_won", "points_lost")  # what both Pong games draw (`CatchTally` fields)


@dataclasses.dataclass(frozen=True)
class Recording:
    """Played games as frames, games one after another (``N`` frames in all).

    ``env`` the registered env's name; ``frames`` ``[N, H, W, 3]`` uint8 (no overlay); ``game``
    ``[N]`` 0-based game index; ``step`` ``[N]`` the step each frame shows, 1-based within its
    game; ``counts[field]`` ``[N]`` that game's running count up to and including that step
    (the fields the env draws: its tally's events); ``seeds`` each game's env seed; ``fps``
    the env's natural frame rate.
    """

    env: str
    frames: np.ndarray
    game: np.ndarray
    step: np.ndarray
    counts: dict[str, np.ndarray]
    seeds: tuple[int, ...]
    fps: int

    def final_counts(self) -> dict[str, int]:
        """Each count summed over the games' last frames (= the games' tallies over the frames shown)."""
        last = np.flatnonzero(np.diff(self.game, append=-1) != 0)
        return {k: int(np.asarray(v)[last].sum()) for k, v in self.counts.items()}


def running_counts(events: Mapping[str, np.ndarray], fields: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-step events ``[G, T]`` -> running counts within each game, flattened game-major ``[G * T]``."""
    return {k: np.cumsum(np.asarray(events[k], np.int64), axis=1).reshape(-1) for k in fields}


def counts_in_words(counts: Mapping[str, int]) -> str:
    """Counts as ``"name value"`` pairs (``"centred 12  off_centre 3"``): how an env that says
    nothing else describes them."""
    return "  ".join(f"{name} {value}" for name, value in counts.items())
