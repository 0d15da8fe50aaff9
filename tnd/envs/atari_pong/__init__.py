"""Atari Pong (ALE ``Pong-v5``, right paddle), registered as env ``atari_pong``.

    env, config = tnd.envs.make("atari_pong", obs_mode="pixels")   # AtariPong, AtariPongConfig
    env, config = tnd.envs.make("atari_pong", obs_mode="ram", obs_history=4)   # [512] observations

Everything of this env lives here: the emulators and observations (`env`: `PongBatch`,
`AtariPongConfig`, 3 reduced actions), the scripted RAM expert (`expert`), the catch /
miss / round events read from RAM (`events`: the `CatchTally` shared with single-player
Pong), the host rollout that plays games side by side (`play`), expert demonstrations
(`collect`, and DAgger's games with a student acting: `collect_mixed`), greedy evaluation (`evaluate`) and its games drawn (`recording`). gymnasium
and ALE load only when games are played.
"""

from __future__ import annotations

from tnd.envs.atari_pong.collect import EXPERT, collect_demonstrations, collect_mixed
from tnd.envs.atari_pong.env import (
    ALE_ACTIONS,
    DOWN,
    ENV_ID,
    EXPERTS,
    NO_BALL_X,
    NUM_ACTIONS,
    OBS_MODES,
    RAM_AGENT_SCORE,
    RAM_AGENT_Y,
    RAM_BALL_DX,
    RAM_BALL_DY,
    RAM_BALL_X,
    RAM_BALL_Y,
    RAM_OPPONENT_SCORE,
    RAM_OPPONENT_Y,
    STAY,
    UP,
    AtariConfigError,
    AtariPong,
    AtariPongConfig,
    FrameResizer,
    PongBatch,
    game_seed,
    make_env,
    objects_from_ram,
    obs_shape,
    ram_features,
    step_obs_shape,
)
from tnd.envs.atari_pong.evaluate import evaluate_expert, evaluate_model, evaluate_policy
from tnd.envs.atari_pong.play import host_rollout
from tnd.envs.catch_tally import CatchTally
from tnd.envs.atari_pong import recording
from tnd.envs.registry import DatasetNaming, EnvDefinition, register_env


def env_and_params(config: AtariPongConfig) -> tuple[AtariPong, AtariPongConfig]:
    """The env description for ``config``; its params are the config itself (host emulators)."""
    return AtariPong(config), config


DEFINITION = register_env(EnvDefinition(
    name="atari_pong",
    config=AtariPongConfig,
    make=env_and_params,
    collect_demonstrations=collect_demonstrations,
    collect_mixed=collect_mixed,
    collects_in_workers=True,
    evaluate_model=evaluate_model,
    evaluate_expert=evaluate_expert,
    tally=CatchTally,
    expert=EXPERT,
    dataset_naming=DatasetNaming(env=ENV_ID, config_key="env_config"),  # as its datasets were first written
    draw_games=recording.draw_games,
    describe_counts=recording.describe_counts,
    table_note=("Our runs' environment: {envs}: Atari Pong against the built-in opponent, not the paper's "
                "{protocol} protocol (a round also ends when the agent scores), so catches per "
                "round are not directly comparable with the paper's."),
))

__all__ = [
    "ALE_ACTIONS", "DEFINITION", "DOWN", "ENV_ID", "EXPERTS", "NO_BALL_X", "NUM_ACTIONS", "OBS_MODES", "RAM_AGENT_SCORE", "RAM_AGENT_Y",
    "RAM_BALL_DX", "RAM_BALL_DY", "RAM_BALL_X", "RAM_BALL_Y", "RAM_OPPONENT_SCORE", "RAM_OPPONENT_Y", "STAY", "UP",
    "AtariConfigError", "AtariPong", "AtariPongConfig", "FrameResizer", "PongBatch", "collect_demonstrations",
    "collect_mixed",
    "env_and_params", "evaluate_expert", "evaluate_model", "evaluate_policy", "game_seed", "host_rollout", "make_env",
    "objects_from_ram", "obs_shape", "ram_features", "step_obs_shape",
]
