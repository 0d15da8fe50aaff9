"""Per-game event counts: what an environment's evaluation returns, and how it is summarised.

Every environment declares a `Tally` subclass (`tnd.envs.registry.EnvDefinition.tally`): a
frozen dataclass whose fields are int arrays ``[G]``, one count per game, with
`Tally.summary` pooling them into the metrics written to ``summary.json`` and
`Tally.headline` saying the main ones (`Tally.headline_metrics`) in one line. The field
names are the names of the per-step events the env's rollout counts (``events(info)`` of
`tnd.envs.rollout.rollout`), so a tally is exactly its trajectory's events summed over time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np


@dataclasses.dataclass(frozen=True)
class Tally:
    """Base class of per-game tallies: subclasses add int-array fields ``[G]`` and `summary`."""

    headline_metrics: ClassVar[tuple[str, ...]] = ()  # the summary metrics `headline` shows

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_counts(cls, counts: Mapping[str, Any]) -> Tally:
        """A tally from per-field counts (arrays ``[G]`` or scalars; extra keys are ignored)."""
        return cls(**{name: np.asarray(counts[name], np.int64).reshape(-1) for name in cls.field_names()})

    @classmethod
    def from_games(cls, games: Sequence[Mapping[str, int]]) -> Tally:
        """A tally from one count dict per game (in game order)."""
        return cls(**{name: np.array([g[name] for g in games], np.int64) for name in cls.field_names()})

    @classmethod
    def concatenate(cls, tallies: Sequence[Tally]) -> Tally:
        """The games of several tallies, in order."""
        return cls(**{
            name: np.concatenate([np.asarray(getattr(t, name)).reshape(-1) for t in tallies])
            for name in cls.field_names()
        })

    @property
    def num_games(self) -> int:
        return int(np.asarray(getattr(self, self.field_names()[0])).size)

    def summary(self) -> dict[str, float]:
        """The metrics pooled over games (every value a JSON number)."""
        raise NotImplementedError(f"{type(self).__name__} must define summary().")

    @classmethod
    def headline(cls, summary: Mapping[str, Any]) -> str:
        """One short line of a run's main metrics (``summary`` may hold more than `summary` gave)."""
        shown = [f"{name} {summary[name]:.4g}" for name in cls.headline_metrics if name in summary]
        return ", ".join(shown) or "metrics in summary.json"
