"""The in-memory form of a demonstration dataset, shared by every environment.

All episodes are concatenated along one step axis; ``episode_starts`` gives the offsets.
Episode ``e`` spans steps ``[episode_starts[e], episode_starts[e + 1])`` (the last one
runs to ``num_steps``). Storage on disk lives in `tnd.data.storage`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Demonstrations:
    """Expert demonstrations.

    Attributes:
      observations: ``[S, *obs_shape]`` float32 (``objects``: ``[S, 5]``; ``pixels``: ``[S, H, W]``).
      actions: ``[S]`` int32 expert labels in {0 stay, 1 up, 2 down}.
      taken_actions: ``[S]`` int32 actions actually executed (differs under perturbations).
      rewards: ``[S]`` float32.
      catches, misses: ``[S]`` bool events observed after the step.
      episode_starts: ``[E]`` int64 offsets of each episode.
      seeds: ``[E]`` int64 environment seed of each episode.
      metadata: JSON-able dict: env name, obs mode, and the config that produced the data.
    """

    observations: np.ndarray
    actions: np.ndarray
    taken_actions: np.ndarray
    rewards: np.ndarray
    catches: np.ndarray
    misses: np.ndarray
    episode_starts: np.ndarray
    seeds: np.ndarray
    metadata: dict[str, Any]

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(self.episode_starts.shape[0])

    @property
    def episode_lengths(self) -> np.ndarray:
        ends = np.append(self.episode_starts[1:], self.num_steps)
        return (ends - self.episode_starts).astype(np.int64)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.observations.shape[1:])
