"""Batched closed-loop play of Atari Pong games: evaluation of policies and models.

`play_games` is the one loop shared by evaluation and expert collection: ``num_envs``
games run side by side in a `PongBatch`; each row plays game after game (game ``g`` is
seeded ``game_seed(seed, g)``, so results do not depend on ``num_envs``) until
``num_games`` are done; a finished row stops stepping. Every step the caller's ``act``
sees the observations, the RAM and which rows just started a game, and the
`EventTracker` counts catches, misses and rounds from the RAM. An optional ``on_step``
hook sees every step's events while the emulators still show that step (the animation of
`tnd.evaluation.render` grabs the RGB screen there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tnd.envs.atari_pong import AtariPongConfig, PongBatch, game_seed
from tnd.evaluation.atari_events import EventTracker, tally_from_games
from tnd.evaluation.metrics import GameTally

# act(obs [B, *obs], ram [B, 128] uint8, reset [B] bool, active [B] bool, games [B] int)
#   -> (labels [B], taken [B]) int: the action to record and the action to execute.
# ``games[b]`` is the index of the game row b plays (its seed is game_seed(seed, games[b])).
ActFn = Callable[..., tuple[np.ndarray, np.ndarray]]

# on_step(batch, stepped [B] bool, games [B] int, reward [B] float32, catch [B] bool, miss [B] bool)
# after each step, before finished rows start their next game: ``batch`` still shows the
# step's screen and RAM; ``stepped`` marks the rows that played it, ``games`` their game index.
StepHook = Callable[[PongBatch, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def play_games(
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
) -> tuple[GameTally, list[dict[str, Any]]]:
    """Plays ``num_games`` games; returns their tally (in game order) and, if ``record``,
    one dict per game with ``observations [T, *obs]``, ``actions``, ``taken_actions``,
    ``rewards``, ``catches``, ``misses`` ``[T]`` and its ``seed``.

    ``batch``: an existing `PongBatch` with ``num_envs`` rows built for ``config`` to reuse
    (building 8 envs costs ~1-2 s); by default one is built and closed here. ``on_step``:
    see `StepHook`.
    """
    if num_games < 1:
        raise ValueError(f"num_games must be >= 1, got {num_games}.")
    if batch is not None and (batch.config != config or batch.num_envs != num_envs):
        raise ValueError("The PongBatch passed to play_games must match config and num_envs.")
    rows = min(num_envs, num_games)
    games: list[dict | None] = [None] * num_games
    episodes: list[dict | None] = [None] * num_games
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
            catch, miss = tracker.update(batch.ram, reward, active)
            if on_step is not None:
                on_step(batch, active.copy(), game_of_row.copy(), reward, catch, miss)
            reset[:] = False
            if record:
                log.append((obs, labels, taken, reward, catch, miss))
            step += 1
            finished = np.flatnonzero(done & active)
            for i in finished:
                g = game_of_row[i]
                games[g] = tracker.finish(i)
                if record:
                    span = log[first_step[i] - log_base : step - log_base]
                    episodes[g] = _episode([tuple(a[i] for a in entry) for entry in span], game_seed(seed, g))
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
    return tally_from_games(games), (episodes if record else [])


def _episode(steps: list[tuple], seed: int) -> dict[str, Any]:
    """One game's per-step tuples (obs, label, taken, reward, catch, miss) -> arrays."""
    obs, labels, taken, rewards, catches, misses = zip(*steps)
    return {
        "observations": np.stack(obs).astype(np.float32),
        "actions": np.asarray(labels, np.int32),
        "taken_actions": np.asarray(taken, np.int32),
        "rewards": np.asarray(rewards, np.float32),
        "catches": np.asarray(catches, bool),
        "misses": np.asarray(misses, bool),
        "seed": int(seed),
    }


def evaluate_policy(
    policy, config: AtariPongConfig, *, num_games: int, seed: int, num_envs: int = 8, progress: bool = True,
    batch: PongBatch | None = None, on_step: StepHook | None = None,
) -> GameTally:
    """Plays ``num_games`` games with ``policy`` and returns their `GameTally`.

    ``policy.initial_state(batch) -> carry`` and ``policy.act(carry, obs [B, ...], reset
    [B] bool) -> (carry, actions [B])``; the policy must reset its carry rows where
    ``reset`` is true (the first step of a new game in that row). ``on_step``: see `StepHook`.
    """
    rows = min(num_envs, num_games)
    carry = policy.initial_state(rows)

    def act(obs, ram, reset, active, games):
        nonlocal carry
        carry, actions = policy.act(carry, obs, reset)
        actions = np.asarray(actions)
        return actions, actions

    tally, _ = play_games(
        config, act, num_games=num_games, seed=seed, num_envs=num_envs, progress=progress, desc="eval", batch=batch,
        on_step=on_step,
    )
    return tally


def evaluate_model(
    model, config: AtariPongConfig, *, num_games: int, seed: int, num_envs: int = 8, progress: bool = True,
    batch: PongBatch | None = None, on_step: StepHook | None = None,
) -> GameTally:
    """Greedy closed-loop evaluation of a `SequenceModel` (see `GreedyModelPolicy`)."""
    from tnd.evaluation.policy import GreedyModelPolicy

    return evaluate_policy(
        GreedyModelPolicy(model), config, num_games=num_games, seed=seed, num_envs=num_envs, progress=progress,
        batch=batch, on_step=on_step,
    )
