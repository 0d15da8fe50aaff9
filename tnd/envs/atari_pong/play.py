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
) -> tuple[CatchTally, list[Trajectory]]:
    """Plays ``num_games`` games; returns their tally (in game order) and, if ``record``,
    one `Trajectory` per game (NumPy ``[T_g, ...]``: observations, labels, executed actions,
    rewards, events; no states).

    ``batch``: an existing `PongBatch` with ``num_envs`` rows built for ``config`` to reuse
    (building 8 envs costs ~1-2 s); by default one is built and closed here. ``on_step``:
    see `StepHook`.
    """
    if num_games < 1:
        raise ValueError(f"num_games must be >= 1, got {num_games}.")
    if batch is not None and (batch.config != config or batch.num_envs != num_envs):
        raise ValueError("The PongBatch passed to host_rollout must match config and num_envs.")
    rows = min(num_envs, num_games)
    games: list[dict | None] = [None] * num_games
    episodes: list[Trajectory | None] = [None] * num_games
    game_of_row = np.full(rows, -1)
    active = np.zeros(rows, bool)
    reset = np.zeros(rows, bool)
    # Recording: one tuple of batch arrays per step (cheap: no per-row work per step);
    # a finished game's rows are gathered from its steps, and steps no game needs are dropped.
    log: list[tuple] = []
    log_base = 0  # step index of log[0]
    first_step = np.zeros(rows, np.int64)  # step index at which each row's game began
    step = 0
    tracker = EventTracker(rows)
    next_game = 0
    bar = tqdm(total=num_games, desc=desc, unit="game", disable=not progress)

    owned = batch is None
    batch = PongBatch(config, rows) if owned else batch
    try:

        def start(i: int) -> None:
            nonlocal next_game
            if next_game >= num_games:
                active[i] = False
                return
            g = next_game
            next_game += 1
            batch.reset_row(i, game_seed(seed, g))
            tracker.start(i, batch.ram[i])
            game_of_row[i], active[i], reset[i] = g, True, True
            first_step[i] = step

        for i in range(rows):
            start(i)
        while active.any():
            obs = batch.observations()
            labels, taken = act(obs, batch.ram, reset.copy(), active.copy(), game_of_row.copy())
            labels, taken = np.asarray(labels), np.asarray(taken)
            reward, done = batch.step(taken, active)
            events = tracker.update(batch.ram, reward, active)
            if on_step is not None:
                on_step(batch, active.copy(), game_of_row.copy(), reward, events)
            reset[:] = False
            if record:
                log.append((obs, labels, taken, reward, events))
            step += 1
            finished = np.flatnonzero(done & active)
            for i in finished:
                g = game_of_row[i]
                games[g] = tracker.finish(i)
                if record:
                    episodes[g] = _game_trajectory(log[first_step[i] - log_base : step - log_base], i)
                bar.update(1)
                start(i)
            if record and len(finished):
                keep = int(first_step[active].min()) if active.any() else step
                del log[: keep - log_base]
                log_base = keep
    finally:
        bar.close()
        if owned:
            batch.close()
    return CatchTally.from_games(games), (episodes if record else [])


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
