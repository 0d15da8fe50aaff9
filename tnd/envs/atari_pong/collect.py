"""Expert demonstrations on Atari Pong: the scripted expert plays, every step is recorded.

With probability ``epsilon`` per step a uniformly random action is executed instead of
the expert's, while the label stays the expert's action (``taken_actions`` records what
was done): the clone then sees recoveries. The perturbation draws come from a generator
seeded by each game's seed, so the data do not depend on ``num_envs`` nor on ``num_workers``
(the processes that share the games, one per core: `tnd.workers`). The env config's
``expert`` picks the shot selection (`make_expert`: lookahead on the games' own emulators,
or the observable rule); `EXPERT` names the expert's code and the config its choice, both
in the dataset's address and metadata, so demonstrations of another expert are never reused.

`collect_mixed` (DAgger's games): a student model plays, the expert's action executed with
probability ``beta``; the expert reads each visited state's RAM and emulator, so it labels
the student's states as it labels its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from tnd.envs.atari_pong.env import (
    ENV_ID,
    NUM_ACTIONS,
    AtariPongConfig,
    PongBatch,
    game_seed,
)
from tnd.envs.atari_pong.expert import make_expert
from tnd.envs.atari_pong.play import host_rollout
from tnd.envs.catch_tally import CatchTally
from tnd.envs.demonstrations import Demonstrations, demonstrations_from_games
from tnd.envs.policies import GreedyModelPolicy
from tnd.envs.rollout import Trajectory
from tnd.workers import resolve_workers, run_in_workers, split_blocks

EXPERT = "tnd.envs.atari_pong.expert.ScriptedExpert+ShotSelector"


def collect_demonstrations(
    config: AtariPongConfig,
    *,
    num_episodes: int,
    seed: int,
    epsilon: float = 0.0,
    num_envs: int = 8,
    progress: bool = True,
    batch: PongBatch | None = None,
    num_workers: int = 1,
) -> Demonstrations:
    """Plays ``num_episodes`` expert games and returns them as `Demonstrations` (game order).

    ``num_workers``: processes playing the games (0: one per available core; 1: here). Each
    plays a contiguous block of games, ``num_envs`` side by side, and the blocks are joined in
    game order, so the data are the same for every ``num_workers`` (tested). A given ``batch``
    (the caller's emulators) plays every game here.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}.")
    workers = resolve_workers(num_workers, num_episodes, "num_workers")
    if batch is not None or workers == 1:
        tally, episodes = _play_games(config, (0, num_episodes), seed=seed, epsilon=epsilon, num_envs=num_envs,
                                      progress=progress, batch=batch)
    else:
        work = functools.partial(_play_block, config, seed=seed, epsilon=epsilon, num_envs=num_envs)
        parts = run_in_workers(work, split_blocks(num_episodes, workers), progress=progress, desc="collect",
                               unit="game")
        tally = CatchTally.concatenate([part_tally for part_tally, _ in parts])
        episodes = [episode for _, part in parts for episode in part]
    return demonstrations_from_games(episodes, [game_seed(seed, g) for g in range(num_episodes)],
                                     metadata=_metadata(config, seed, num_episodes, epsilon=float(epsilon),
                                                        expert_summary=tally.summary()))


def _metadata(config: AtariPongConfig, seed: int, num_episodes: int, **extra) -> dict:
    """A dataset's metadata: the env, its config (observation mode and history), the expert,
    the seed and game count, and what the collection adds (``extra``)."""
    return {
        "env": ENV_ID, "obs_mode": config.obs_mode, "obs_history": config.obs_history,
        "env_config": config.to_dict(), "expert": EXPERT, "seed": int(seed), "num_episodes": int(num_episodes),
        **extra,
    }


def _play_block(config: AtariPongConfig, block: tuple[int, int], report: Callable[[int], None], *, seed: int,
                epsilon: float, num_envs: int) -> tuple[CatchTally, list[Trajectory]]:
    """A worker's share: games ``block = (first, count)``, each finished game reported."""
    return _play_games(config, block, seed=seed, epsilon=epsilon, num_envs=num_envs, progress=False,
                       on_game=lambda game: report(1))


def _play_games(config: AtariPongConfig, block: tuple[int, int], *, seed: int, epsilon: float, num_envs: int,
                progress: bool, batch: PongBatch | None = None,
                on_game: Callable[[int], None] | None = None) -> tuple[CatchTally, list[Trajectory]]:
    """The expert plays games ``first .. first + count - 1`` of ``block``: their tally and
    recorded games, in game order. Game ``g`` is seeded ``game_seed(seed, g)`` and draws its
    perturbations from its own stream, so a game's record does not depend on the block or
    the rows it is played in."""
    first, count = block
    rows = min(num_envs, count)
    owned = batch is None
    batch = PongBatch(config, rows) if owned else batch
    expert = make_expert(config, batch, rows)
    rngs = [np.random.default_rng(0) for _ in range(rows)]

    def act(obs, ram, reset, active, games):
        for i in np.flatnonzero(reset):  # a new game in row i: its own perturbation stream
            rngs[i] = np.random.default_rng([game_seed(seed, int(games[i])), 13])
        labels = expert.act(ram, reset)
        taken = labels.copy()
        if epsilon > 0.0:
            for i in np.flatnonzero(active):
                if rngs[i].random() < epsilon:
                    taken[i] = rngs[i].integers(NUM_ACTIONS)
        expert.executed(taken)
        return labels, taken

    try:
        return host_rollout(
            config, act, num_games=count, seed=seed, num_envs=rows if owned else num_envs, record=True,
            progress=progress, desc="collect", batch=batch, first_game=first, on_game=on_game,
        )
    finally:
        if owned:
            batch.close()
def collect_mixed(
    config: AtariPongConfig,
    model,
    *,
    beta: float,
    num_episodes: int,
    seed: int,
    num_envs: int = 8,
    progress: bool = True,
    batch: PongBatch | None = None,
) -> Demonstrations:
    """DAgger's data: ``num_episodes`` games in which the harness ``model`` acts greedily,
    except that with probability ``beta`` per step the expert's action is executed; the
    expert labels every step. The games are those of `collect_demonstrations` for ``seed``
    (with ``beta = 1`` its data with ``epsilon = 0``); the draws come from a generator per
    game, so the data do not depend on ``num_envs``. ``metadata`` adds ``beta`` and
    ``student_agreement`` (the share of steps where the model's choice equals the label).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1] (probability of executing the expert's action), got {beta}.")
    rows = min(num_envs, num_episodes)
    owned = batch is None
    batch = PongBatch(config, rows) if owned else batch
    expert = make_expert(config, batch, rows)
    model.eval()
    student = GreedyModelPolicy(model)
    state = {"carry": student.initial_state(rows), "agree": 0, "steps": 0}
    rngs = [np.random.default_rng(0) for _ in range(rows)]

    def act(obs, ram, reset, active, games):
        for i in np.flatnonzero(reset):  # a new game in row i: its own draws
            rngs[i] = np.random.default_rng([game_seed(seed, int(games[i])), 17])
        labels = expert.act(ram, reset)
        state["carry"], own = student.act(state["carry"], obs, reset)
        taken = labels.copy()
        for i in np.flatnonzero(active):
            if not rngs[i].random() < beta:
                taken[i] = own[i]
        state["agree"] += int(np.sum((own == labels) & active))
        state["steps"] += int(np.sum(active))
        expert.executed(taken)
        return labels, taken

    try:
        tally, episodes = host_rollout(
            config, act, num_games=num_episodes, seed=seed, num_envs=rows if owned else num_envs, record=True,
            progress=progress, desc="dagger", batch=batch,
        )
    finally:
        if owned:
            batch.close()
    return demonstrations_from_games(episodes, [game_seed(seed, g) for g in range(num_episodes)],
                                     metadata=_metadata(config, seed, num_episodes, epsilon=0.0, beta=float(beta),
                                                        student_agreement=state["agree"] / max(state["steps"], 1),
                                                        student_summary=tally.summary()))
