"""The host rollout of Atari Pong: games played side by side in emulators, step by step.

`host_rollout` is the one loop shared by evaluation and expert collection, and it fills the
contract of the JAX `tnd.envs.rollout.rollout`: the games' `CatchTally` and, with
``record``, one `Trajectory` per game. ``num_envs`` games run side by side in a
`PongBatch`; each row plays game after game (game ``g`` is seeded ``game_seed(seed, g)``,
so results do not depend on ``num_envs``) until ``num_games`` are done; a finished row
stops stepping. Every step the caller's ``act`` sees the observations, the RAM and which
rows just started a game, and the `EventTracker` counts the step's events from the RAM.
An optional ``on_step`` hook sees every step's events while the emulators still show that
step (the animation of `tnd.evaluation.render` grabs the RGB screen there).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from tnd.envs.atari_pong.env import AtariPongConfig, PongBatch, game_seed
from tnd.envs.atari_pong.events import EventTracker
from tnd.envs.catch_tally import CatchTally
from tnd.envs.rollout import Trajectory

# act(obs [B, *obs], ram [B, 128] uint8, reset [B] bool, active [B] bool, games [B] int)
#   -> (labels [B], taken [B]) int: the action to record and the action to execute.
# ``games[b]`` is the index of the game row b plays (its seed is game_seed(seed, games[b])).
ActFn = Callable[..., tuple[np.ndarray, np.ndarray]]

# on_step(batch, stepped [B] bool, games [B] int, reward [B] float32, events {field: [B] int})
# after each step, before finished rows start their next game: ``batch`` still shows the
# step's screen and RAM; ``stepped`` marks the rows that played it, ``games`` their game
# index, ``events`` the step's counted `CatchTally` events.
StepHook = Callable[[PongBatch, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]], None]


def host_rollout(
    config: AtariPongConfig,
    act: ActFn,
    *,
    num_games: int,
    seed: int,
    num_envs: int = 8,
    record: bool = False,
    progress: bool = True,
    desc: str = "pong",
    batch: PongBatch | None = None,
    on_step: StepHook | None = None,
    first_game: int = 0,
    on_game: Callable[[int], None] | None = None,
) -> tuple[CatchTally, list[Trajectory]]:
    """Plays ``num_games`` games; returns their tally (in game order) and, if ``record``,
    one `Trajectory` per game (NumPy ``[T_g, ...]``: observations, labels, executed actions,
    rewards, events; no states).

    ``batch``: an existing `PongBatch` with ``num_envs`` rows built for ``config`` to reuse
    (building 8 envs costs ~1-2 s); by default one is built and closed here. ``on_step``:
    see `StepHook`. ``first_game``: the games played are ``first_game .. first_game +
    num_games - 1`` (seeds ``game_seed(seed, g)``; a worker's block of a larger collection).
    ``on_game(g)``: called as game ``g`` ends (a worker's progress report).
    """
    if num_games < 1:
        raise ValueError(f"num_games must be >= 1, got {num_games}.")
    if batch is not None and (batch.config != config or batch.num_envs != num_envs):
        raise ValueError("The PongBatch passed to host_rollout must match config and num_envs.")
    rows = min(num_envs, num_games)
    games: list[dict | None] = [None] * num_games
    episodes: list[Trajectory | None] = [None] * num_games
    log = _StepLog()
    tracker = EventTracker(rows)
    bar = tqdm(total=num_games, desc=desc, unit="game", disable=not progress)

    owned = batch is None
    batch = PongBatch(config, rows) if owned else batch
    try:
        plan = _GamePlan(batch, tracker, rows, seed=seed, num_games=num_games, first_game=first_game)
        for i in range(rows):
            plan.start(i, step=0)
        step = 0
        while plan.active.any():
            obs = batch.observations()
            labels, taken = act(obs, batch.ram, plan.reset.copy(), plan.active.copy(), plan.game_of_row.copy())
            labels, taken = np.asarray(labels), np.asarray(taken)
            reward, done = batch.step(taken, plan.active)
            events = tracker.update(batch.ram, reward, plan.active)
            if on_step is not None:
                on_step(batch, plan.active.copy(), plan.game_of_row.copy(), reward, events)
            plan.reset[:] = False
            if record:
                log.append((obs, labels, taken, reward, events))
            step += 1
            finished = np.flatnonzero(done & plan.active)
            for i in finished:
                g = int(plan.game_of_row[i])
                games[g - first_game] = tracker.finish(i)
                if record:
                    episodes[g - first_game] = log.game(i, plan.first_step[i], step)
                bar.update(1)
                if on_game is not None:
                    on_game(g)
                plan.start(i, step=step)
            if record and len(finished):
                log.drop_before(int(plan.first_step[plan.active].min()) if plan.active.any() else step)
    finally:
        bar.close()
        if owned:
            batch.close()
    return CatchTally.from_games(games), (episodes if record else [])


class _GamePlan:
    """Which game each of the first ``rows`` rows of a `PongBatch` plays: game after game in
    order from ``first_game`` (game ``g`` seeded ``game_seed(seed, g)``), a row taking the next game when its own
    ends and stopping when none is left. Arrays ``[rows]``: ``game_of_row`` (int), ``active``,
    ``reset`` (the row just started a game), ``first_step`` (the step its game began at)."""

    def __init__(self, batch: PongBatch, tracker: EventTracker, rows: int, *, seed: int, num_games: int,
                 first_game: int = 0):
        self.batch, self.tracker, self.seed = batch, tracker, seed
        self.next_game, self.end_game = first_game, first_game + num_games
        self.game_of_row = np.full(rows, -1)
        self.active = np.zeros(rows, bool)
        self.reset = np.zeros(rows, bool)
        self.first_step = np.zeros(rows, np.int64)

    def start(self, row: int, *, step: int) -> None:
        """Row ``row`` starts the next game at ``step`` (or stops: every game is taken)."""
        if self.next_game >= self.end_game:
            self.active[row] = False
            return
        g = self.next_game
        self.next_game += 1
        self.batch.reset_row(row, game_seed(self.seed, g))
        self.tracker.start(row, self.batch.ram[row])
        self.game_of_row[row], self.active[row], self.reset[row] = g, True, True
        self.first_step[row] = step


class _StepLog:
    """The recorded steps: one tuple of batch arrays (obs, labels, taken, reward, events) per
    step, cheap to keep (no per-row work per step). A finished game's rows are cut out of its
    steps, and the steps no running game needs any more are dropped."""

    def __init__(self):
        self.steps: list[tuple] = []
        self.base = 0  # step index of steps[0]

    def append(self, step: tuple) -> None:
        self.steps.append(step)

    def game(self, row: int, first: int, end: int) -> Trajectory:
        """The `Trajectory` of row ``row`` over steps ``first .. end - 1``."""
        return _game_trajectory(self.steps[first - self.base : end - self.base], row)

    def drop_before(self, keep: int) -> None:
        """Forgets the steps before step ``keep``."""
        del self.steps[: keep - self.base]
        self.base = keep


def _game_trajectory(steps: list[tuple], row: int) -> Trajectory:
    """Row ``row`` of one game's logged batch steps (obs, labels, taken, reward, events) -> its `Trajectory`."""
    obs, labels, taken, rewards, events = zip(*steps)
    return Trajectory(
        observations=np.stack([o[row] for o in obs]).astype(np.float32),
        labels=np.asarray([a[row] for a in labels], np.int32),
        actions=np.asarray([a[row] for a in taken], np.int32),
        rewards=np.asarray([r[row] for r in rewards], np.float32),
        events={name: np.asarray([e[name][row] for e in events], np.int64) for name in events[0]},
    )
