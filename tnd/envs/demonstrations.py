"""The in-memory form of a demonstration dataset: what every environment's ``collect`` returns.

All episodes are concatenated along one step axis; ``episode_starts`` gives the offsets.
Episode ``e`` spans steps ``[episode_starts[e], episode_starts[e + 1])`` (the last one
runs to ``num_steps``). `demonstrations_from_games` builds one from the per-game
`tnd.envs.rollout.Trajectory` records of a rollout; storage on disk lives in
`tnd.data.storage`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from tnd.envs.rollout import Trajectory


@dataclasses.dataclass(frozen=True)
class Demonstrations:
    """Expert demonstrations.

    Attributes:
      observations: ``[S, *obs_shape]`` float32 (``objects``: ``[S, 5]``; ``pixels``: ``[S, H, W]``).
      actions: ``[S]`` int32 expert labels in ``[0, num_actions)`` of the env.
      taken_actions: ``[S]`` int32 actions actually executed (differs under perturbations).
      rewards: ``[S]`` float32.
      catches, misses: ``[S]`` bool events observed after the step (the env names which).
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


def demonstrations_from_games(
    games: Sequence[Trajectory], seeds: Sequence[int], metadata: dict[str, Any], *,
    catch_event: str = "catches", miss_event: str = "misses",
) -> Demonstrations:
    """Recorded games (one `Trajectory` with leaves ``[T_g, ...]`` per game, in order) ->
    `Demonstrations` with the games one after another.

    The dataset's ``catches`` / ``misses`` are the games' ``events[catch_event]`` /
    ``events[miss_event]`` (non-zero = true); ``seeds[g]`` is game ``g``'s env seed.
    """
    lengths = np.array([len(game.labels) for game in games], np.int64)

    def joined(pick) -> np.ndarray:
        return np.concatenate([np.asarray(pick(game)) for game in games])

    return Demonstrations(
        observations=joined(lambda g: g.observations).astype(np.float32),
        actions=joined(lambda g: g.labels).astype(np.int32),
        taken_actions=joined(lambda g: g.actions).astype(np.int32),
        rewards=joined(lambda g: g.rewards).astype(np.float32),
        catches=joined(lambda g: g.events[catch_event]).astype(bool),
        misses=joined(lambda g: g.events[miss_event]).astype(bool),
        episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        seeds=np.asarray(seeds, np.int64).reshape(-1),
        metadata=metadata,
    )


# The dtype kind each stored array must have: f float, i signed/unsigned integer, b bool.
ARRAY_KINDS = {
    "observations": "f", "actions": "iu", "taken_actions": "iu", "rewards": "f", "catches": "b",
    "misses": "b", "episode_starts": "iu", "seeds": "iu",
}


def content_problems(demos: Demonstrations, num_actions: int) -> list[str]:
    """What is wrong with a dataset's contents (empty when it is usable): dtypes, lengths,
    labels outside ``[0, num_actions)`` and episode offsets that do not partition the steps."""
    problems = []
    for name, kinds in ARRAY_KINDS.items():
        kind = np.asarray(getattr(demos, name)).dtype.kind
        if kind not in kinds:
            problems.append(f"{name} has dtype {getattr(demos, name).dtype} (expected {'/'.join(kinds)} kind)")
    steps = demos.num_steps
    for name in ("observations", "taken_actions", "rewards", "catches", "misses"):
        if len(getattr(demos, name)) != steps:
            problems.append(f"{name} has {len(getattr(demos, name))} steps, actions has {steps}")
    if len(demos.seeds) != demos.num_episodes:
        problems.append(f"{len(demos.seeds)} episode seeds for {demos.num_episodes} episodes")
    if problems:  # the checks below assume the shapes and dtypes are right
        return problems
    for name in ("actions", "taken_actions"):
        labels = np.asarray(getattr(demos, name))
        bad = labels[(labels < 0) | (labels >= num_actions)]
        if bad.size:
            problems.append(f"{name} holds {int(bad[0])}, outside the {num_actions} actions 0..{num_actions - 1}")
    starts = np.asarray(demos.episode_starts)
    if starts.size == 0 or starts[0] != 0 or (np.diff(starts) <= 0).any() or starts[-1] >= steps:
        problems.append(f"episode_starts {starts[:6].tolist()}{'...' if starts.size > 6 else ''} must start at 0 "
                        f"and increase strictly below {steps} steps")
    return problems


def concatenate_demonstrations(parts: Sequence[Demonstrations], metadata: dict[str, Any]) -> Demonstrations:
    """Datasets one after another (episodes in order; offsets shifted) with ``metadata``:
    how DAgger aggregates its rounds' games with the expert data."""
    if not parts:
        raise ValueError("concatenate_demonstrations needs at least one dataset.")
    offsets = np.cumsum([0] + [part.num_steps for part in parts[:-1]])

    def joined(name: str) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(part, name)) for part in parts])

    return Demonstrations(
        observations=joined("observations"), actions=joined("actions"), taken_actions=joined("taken_actions"),
        rewards=joined("rewards"), catches=joined("catches"), misses=joined("misses"),
        episode_starts=np.concatenate([part.episode_starts + off for part, off in zip(parts, offsets)]).astype(np.int64),
        seeds=joined("seeds").astype(np.int64), metadata=metadata,
    )
