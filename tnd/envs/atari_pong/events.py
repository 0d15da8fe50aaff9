"""Catch / miss / round events of Atari Pong games, read from the emulator RAM.

Definitions (docs/design.md, `tnd.envs.catch_tally`):

* catch  the ball's x-direction byte (RAM 58) flips 255 (toward the agent) -> 1 (away)
         while the ball is in play on the agent's side (ball x >= 150). The direction byte
         is the game's own state, so a bounce in the middle of a frameskip is still seen
         as a flip between two agent steps even when the positions alone look as if the
         ball were still approaching (x 184 -> 186 after touching the paddle at 188).
* miss   the opponent scores (reward < 0).
* round  play between two points: a round ends at every reward != 0.
* points won / lost: reward > 0 / reward < 0.

`detect_events` is the pure per-step rule; `EventTracker` counts every `CatchTally` event
of each step for a batch of games and accumulates them per game.
"""

from __future__ import annotations

import numpy as np

from tnd.envs.atari_pong.env import NO_BALL_X, RAM_BALL_DX, RAM_BALL_X
from tnd.envs.catch_tally import CatchTally

TOWARD_AGENT, AWAY_FROM_AGENT = 255, 1
AGENT_SIDE_X = 150


def detect_events(prev_ram: np.ndarray, ram: np.ndarray, reward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One agent step's events: RAM before/after ``[..., 128]`` and reward ``[...]`` ->
    ``(catch, miss)`` bool ``[...]``."""
    prev_ram, ram = np.asarray(prev_ram), np.asarray(ram)
    ball_x = ram[..., RAM_BALL_X]
    catch = (
        (prev_ram[..., RAM_BALL_DX] == TOWARD_AGENT)
        & (ram[..., RAM_BALL_DX] == AWAY_FROM_AGENT)
        & (ball_x >= AGENT_SIDE_X)
        & (ball_x < NO_BALL_X)
    )
    return catch, np.asarray(reward) < 0


class EventTracker:
    """Per-game event counts for ``num_envs`` games played side by side.

    ``start(row, ram)`` begins a new game in ``row`` (its first RAM ``[128]``); ``update(ram,
    reward, active)`` consumes one step and returns its events ``{field: int64 [B]}`` (the
    `CatchTally` fields; zero in inactive rows); ``finish(row)`` returns that game's counts
    as a dict of ints. Catches of a round cut off by the step limit are counted in
    ``catches`` but not in ``catches_in_rounds``.
    """

    def __init__(self, num_envs: int):
        self.prev_ram = np.zeros((num_envs, 128), np.uint8)
        self.counts = {name: np.zeros(num_envs, np.int64) for name in CatchTally.field_names()}
        self.round_catches = np.zeros(num_envs, np.int64)

    def start(self, row: int, ram: np.ndarray) -> None:
        self.prev_ram[row] = ram
        for value in self.counts.values():
            value[row] = 0
        self.round_catches[row] = 0

    def update(self, ram: np.ndarray, reward: np.ndarray, active: np.ndarray | None = None) -> dict[str, np.ndarray]:
        ram, reward = np.asarray(ram), np.asarray(reward)
        active = np.ones(reward.shape, bool) if active is None else np.asarray(active, bool)
        catch, miss = detect_events(self.prev_ram, ram, reward)
        catch, miss = catch & active, miss & active
        point = (reward != 0) & active
        self.round_catches += catch
        events = {
            "catches": catch.astype(np.int64),
            "misses": miss.astype(np.int64),
            "rounds": point.astype(np.int64),
            "catches_in_rounds": np.where(point, self.round_catches, 0),
            "points_won": ((reward > 0) & active).astype(np.int64),
            "points_lost": miss.astype(np.int64),
            "steps": active.astype(np.int64),
        }
        for name, value in events.items():
            self.counts[name] += value
        self.round_catches[point] = 0
        self.prev_ram[active] = ram[active]
        return events

    def finish(self, row: int) -> dict[str, int]:
        return {name: int(value[row]) for name, value in self.counts.items()}
