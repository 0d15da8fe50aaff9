"""What one step of single-player Pong counts: its `CatchTally` events, read from the step's ``info``."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def step_events(info: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """``info`` of `SinglePlayerPong.step_env` (per game) -> int32 event counts of the step.

    ``rounds``: rounds completed (by a miss or at the catch cap) and ``catches_in_rounds``
    their catches (a round cut off by the end of the game is not counted); ``points_won``:
    rounds that reached the catch cap; ``points_lost``: misses; ``steps``: 1.
    """
    round_over = info["round_over"].astype(jnp.int32)
    return {
        "catches": info["catch"].astype(jnp.int32),
        "misses": info["miss"].astype(jnp.int32),
        "rounds": round_over,
        "catches_in_rounds": info["round_catches"] * round_over,
        "points_won": info["capped"].astype(jnp.int32),
        "points_lost": info["miss"].astype(jnp.int32),
        "steps": jnp.ones_like(round_over),
    }
