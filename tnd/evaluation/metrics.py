"""The catch metrics (exact definitions in docs/design.md), shared by every env.

Per game an environment reports integer tallies; `summarize` pools them:

* catch      the agent's paddle returns the ball
* miss       the ball passes the agent's paddle (the opponent scores)
* round      play between two points (single-player: ends only at a miss or the cap)
* catch_rate         = catches / (catches + misses)
* catches_per_round  = catches in completed rounds / completed rounds (pooled over games)
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class GameTally:
    """Counts for a batch of games; every field is an int array ``[G]`` (one per game)."""

    catches: np.ndarray
    misses: np.ndarray
    rounds: np.ndarray  # completed rounds
    catches_in_rounds: np.ndarray  # catches that belong to completed rounds
    points_won: np.ndarray
    points_lost: np.ndarray
    steps: np.ndarray

    @classmethod
    def concatenate(cls, tallies: list["GameTally"]) -> "GameTally":
        return cls(**{
            f.name: np.concatenate([np.asarray(getattr(t, f.name)).reshape(-1) for t in tallies])
            for f in dataclasses.fields(cls)
        })


def summarize(tally: GameTally) -> dict[str, float]:
    """Pools per-game tallies into the metrics reported in summaries and tables."""
    t = {f.name: np.asarray(getattr(tally, f.name), np.int64).reshape(-1) for f in dataclasses.fields(tally)}
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
        "steps": int(t["steps"].sum()),
    }
