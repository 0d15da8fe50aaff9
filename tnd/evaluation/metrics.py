"""The metrics of a run: an environment's per-game tally pooled into its summary.

Each env declares its tally (`tnd.envs.registry.EnvDefinition.tally`, a `tnd.envs.tally.Tally`);
both Pong games count catches, misses, rounds and points (`tnd.envs.catch_tally.CatchTally`,
definitions in docs/design.md).
"""

from __future__ import annotations

from tnd.envs.tally import Tally


def summarize(tally: Tally) -> dict[str, float]:
    """Pools per-game tallies into the metrics reported in summaries and tables (`Tally.summary`)."""
    if not isinstance(tally, Tally):
        raise TypeError(f"summarize takes an env's Tally (tnd.envs.tally), got {type(tally).__name__}.")
    return tally.summary()
