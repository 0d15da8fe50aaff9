"""Closed-loop evaluation on Atari Pong: a policy, or a harness model acting greedily, plays `host_rollout`."""

from __future__ import annotations

import numpy as np

from tnd.envs.atari_pong.env import AtariPongConfig, PongBatch
from tnd.envs.atari_pong.expert import make_expert
from tnd.envs.atari_pong.play import StepHook, host_rollout
from tnd.envs.catch_tally import CatchTally
from tnd.envs.policies import GreedyModelPolicy


def evaluate_policy(
    policy, config: AtariPongConfig, *, num_games: int, seed: int, num_envs: int = 8, progress: bool = True,
    batch: PongBatch | None = None, on_step: StepHook | None = None,
) -> CatchTally:
    """Plays ``num_games`` games with ``policy`` and returns their `CatchTally`.

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

    tally, _ = host_rollout(
        config, act, num_games=num_games, seed=seed, num_envs=num_envs, progress=progress, desc="eval", batch=batch,
        on_step=on_step,
    )
    return tally


def evaluate_model(
    model, config: AtariPongConfig, *, num_games: int, seed: int, num_envs: int = 8, progress: bool = True,
    batch: PongBatch | None = None, on_step: StepHook | None = None,
) -> CatchTally:
    """Greedy closed-loop evaluation of a `SequenceModel` (see `GreedyModelPolicy`)."""
    return evaluate_policy(
        GreedyModelPolicy(model), config, num_games=num_games, seed=seed, num_envs=num_envs, progress=progress,
        batch=batch, on_step=on_step,
    )


def evaluate_expert(
    config: AtariPongConfig, *, num_games: int, seed: int, num_envs: int = 8, progress: bool = True,
) -> CatchTally:
    """The scripted expert ``config.expert`` names (`make_expert`), unperturbed, on the games
    `evaluate_model` plays for ``seed`` (the table's reference row, the expert's win figures)."""
    rows = min(num_envs, num_games)
    with PongBatch(config, rows) as batch:
        expert = make_expert(config, batch, rows)

        def act(obs, ram, reset, active, games):
            actions = expert.act(ram, reset)
            return actions, actions

        tally, _ = host_rollout(config, act, num_games=num_games, seed=seed, num_envs=rows, progress=progress,
                                desc="expert", batch=batch)
    return tally
