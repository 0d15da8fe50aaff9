"""Expert demonstrations on Atari Pong: the scripted expert plays, every step is recorded.

With probability ``epsilon`` per step a uniformly random action is executed instead of
the expert's, while the label stays the expert's action (``taken_actions`` records what
was done): the clone then sees recoveries. The perturbation draws come from a generator
seeded by each game's seed, so the data do not depend on ``num_envs``.
"""

from __future__ import annotations

import numpy as np

from tnd.data.demonstrations import Demonstrations
from tnd.envs.actions import NUM_ACTIONS
from tnd.envs.atari_expert import ScriptedExpert
from tnd.envs.atari_pong import ENV_ID, AtariPongConfig, game_seed
from tnd.evaluation.atari_rollout import play_games
from tnd.evaluation.metrics import summarize


def collect_demonstrations(
    config: AtariPongConfig,
    *,
    num_episodes: int,
    seed: int,
    epsilon: float = 0.0,
    num_envs: int = 8,
    progress: bool = True,
    batch=None,
) -> Demonstrations:
    """Plays ``num_episodes`` expert games and returns them as `Demonstrations` (game order)."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}.")
    rows = min(num_envs, num_episodes)
    expert = ScriptedExpert(rows, frameskip=config.frameskip)
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

    tally, episodes = play_games(
        config, act, num_games=num_episodes, seed=seed, num_envs=num_envs, record=True,
        progress=progress, desc="collect", batch=batch,
    )
    lengths = np.array([len(e["actions"]) for e in episodes], np.int64)
    cat = {k: np.concatenate([e[k] for e in episodes]) for k in
           ("observations", "actions", "taken_actions", "rewards", "catches", "misses")}
    return Demonstrations(
        observations=cat["observations"],
        actions=cat["actions"],
        taken_actions=cat["taken_actions"],
        rewards=cat["rewards"],
        catches=cat["catches"],
        misses=cat["misses"],
        episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        seeds=np.array([e["seed"] for e in episodes], np.int64),
        metadata={
            "env": ENV_ID,
            "obs_mode": config.obs_mode,
            "env_config": config.to_dict(),
            "expert": "tnd.envs.atari_expert.ScriptedExpert",
            "epsilon": float(epsilon),
            "seed": int(seed),
            "num_episodes": int(num_episodes),
            "expert_summary": summarize(tally),
        },
    )
