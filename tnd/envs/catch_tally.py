"""The catch metrics of both Pong games (exact definitions in docs/design.md).

Per game `CatchTally` counts:

* catch      the agent's paddle returns the ball
* miss       the ball passes the agent's paddle (the opponent scores)
* round      play between two points (single-player: ends only at a miss or the cap)
* points won / lost, and the steps played

and `CatchTally.summary` pools them over games:

* catch_rate         = catches / (catches + misses)
* catches_per_round  = catches in completed rounds / completed rounds
* score              = (points won - points lost) / games
* games_won          = games with more points won than lost (two-player Atari Pong)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from tnd.envs.tally import Tally


@dataclasses.dataclass(frozen=True)
class CatchTally(Tally):
    """Counts for a batch of games; every field is an int array ``[G]`` (one per game)."""

    headline_metrics = ("catch_rate", "catches_per_round", "score")

    catches: np.ndarray
    misses: np.ndarray
    rounds: np.ndarray  # completed rounds
    catches_in_rounds: np.ndarray  # catches that belong to completed rounds
    points_won: np.ndarray
    points_lost: np.ndarray
    steps: np.ndarray

    def summary(self) -> dict[str, float]:
        """The metrics reported in summaries and tables, pooled over games."""
        t = {name: np.asarray(getattr(self, name), np.int64).reshape(-1) for name in self.field_names()}
        catches, misses, rounds = t["catches"].sum(), t["misses"].sum(), t["rounds"].sum()
        won, lost = t["points_won"].sum(), t["points_lost"].sum()
        games = t["catches"].size
        return {
            "games": int(games),
            "catches": int(catches),
            "misses": int(misses),
            "rounds": int(rounds),
            "catch_rate": float(catches / (catches + misses)) if catches + misses else float("nan"),
            "catches_per_round": float(t["catches_in_rounds"].sum() / rounds) if rounds else float("nan"),
            "points_won": float(won / games) if games else float("nan"),
            "points_lost": float(lost / games) if games else float("nan"),
            "score": float((won - lost) / games) if games else float("nan"),
            "games_won": int((t["points_won"] > t["points_lost"]).sum()),
            "steps": int(t["steps"].sum()),
        }

    @classmethod
    def headline(cls, summary: Mapping[str, Any]) -> str:
        return (f"catch rate {summary['catch_rate']:.3f}, {summary['catches_per_round']:.2f} catches/round, "
                f"score {summary['score']:+.2f}")
