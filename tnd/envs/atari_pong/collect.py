"""Expert demonstrations on Atari Pong: the scripted expert plays, every step is recorded.

With probability ``epsilon`` per step a uniformly random action is executed instead of
the expert's, while the label stays the expert's action (``taken_actions`` records what
was done): the clone then sees recoveries. The perturbation draws come from a generator
seeded by each game's seed, so the data do not depend on ``num_envs``. The expert chooses its
shots by lookahead on the games' own emulators (`ShotSelector`); `EXPERT` names it in the
dataset's address and metadata, so demonstrations of an earlier expert are never reused.

`collect_mixed` (DAgger's games): a student model plays, the expert's action executed with
probability ``beta``; the expert reads each visited state's RAM and emulator, so it labels
the student's states as it labels its own.
"""

from __future__ import annotations

import numpy as np

from tnd.envs.atari_pong.env import ENV_ID, NUM_ACTIONS, AtariPongConfig, PongBatch, game_seed
from tnd.envs.atari_pong.expert import ScriptedExpert, ShotSelector
from tnd.envs.atari_pong.play import host_rollout
from tnd.envs.demonstrations import Demonstrations, demonstrations_from_games
from tnd.envs.policies import GreedyModelPolicy

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
) -> Demonstrations:
    """Plays ``num_episodes`` expert games and returns them as `Demonstrations` (game order)."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}.")
    rows = min(num_envs, num_episodes)
    owned = batch is None
    batch = PongBatch(config, rows) if owned else batch
    expert = ScriptedExpert(rows, frameskip=config.frameskip, shots=ShotSelector(batch))
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
        tally, episodes = host_rollout(
            config, act, num_games=num_episodes, seed=seed, num_envs=rows if owned else num_envs, record=True,
            progress=progress, desc="collect", batch=batch,
        )
    finally:
        if owned:
            batch.close()
    return demonstrations_from_games(episodes, [game_seed(seed, g) for g in range(num_episodes)], metadata={
        "env": ENV_ID,
        "obs_mode": config.obs_mode,
        "obs_history": config.obs_history,
        "env_config": config.to_dict(),
        "expert": EXPERT,
        "epsilon": float(epsilon),
        "seed": int(seed),
        "num_episodes": int(num_episodes),
        "expert_summary": tally.summary(),
    })


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
    expert = ScriptedExpert(rows, frameskip=config.frameskip, shots=ShotSelector(batch))
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
    return demonstrations_from_games(episodes, [game_seed(seed, g) for g in range(num_episodes)], metadata={
        "env": ENV_ID,
        "obs_mode": config.obs_mode,
        "env_config": config.to_dict(),
        "expert": EXPERT,
        "epsilon": 0.0,
        "seed": int(seed),
        "num_episodes": int(num_episodes),
        "beta": float(beta),
        "student_agreement": state["agree"] / max(state["steps"], 1),
        "student_summary": tally.summary(),
    })
