"""Single-player Pong in pure JAX, registered as env ``pong`` (the paper's protocol).

    env, params = tnd.envs.make("pong", max_steps=500)   # SinglePlayerPong, PongParams

Everything of this env lives here: the game (`env`: `SinglePlayerPong`, `PongConfig`,
3 actions), the same game behind perturbations (`perturb`: observation noise, action
delay, sticky actions, occlusion), its analytic expert (`expert`), what a step counts (`events`: the
`CatchTally` shared with Atari Pong), expert demonstrations (`collect`), greedy
evaluation (`evaluate`) and RGB frames (`render`, imported on demand). Collection and
evaluation are the same `tnd.envs.rollout.rollout`.
"""

from __future__ import annotations

from tnd.envs.catch_tally import CatchTally
from tnd.envs.pong.collect import collect_demonstrations
from tnd.envs.pong.env import (
    COLLECT_STREAM,
    DOWN,
    EVAL_STREAM,
    NUM_ACTIONS,
    OBS_DIM,
    OPPONENT_Y,
    STAY,
    UP,
    PongConfig,
    PongConfigError,
    PongParams,
    PongState,
    SinglePlayerPong,
    crossing_y,
    game_seeds,
    obs_shape,
    to_params,
)
from tnd.envs.pong.evaluate import evaluate_expert, evaluate_model, record_model
from tnd.envs.pong.events import step_events
from tnd.envs.pong.expert import expert_action
from tnd.envs.pong.perturb import PerturbedParams, PerturbedPong, PerturbedState, env_for, is_perturbed
from tnd.envs.registry import EnvDefinition, register_env


def env_and_params(config: PongConfig) -> tuple[SinglePlayerPong | PerturbedPong, PongParams]:
    """The env and its parameters pytree for ``config`` (behind its perturbations, if any)."""
    return env_for(config, SinglePlayerPong(config))


DEFINITION = register_env(EnvDefinition(
    name="pong",
    config=PongConfig,
    make=env_and_params,
    collect_demonstrations=collect_demonstrations,
    evaluate_model=evaluate_model,
    evaluate_expert=evaluate_expert,
    tally=CatchTally,
    dataset_env="pong",
    dataset_config_key="config",
))

__all__ = [
    "COLLECT_STREAM", "DEFINITION", "DOWN", "EVAL_STREAM", "NUM_ACTIONS", "OBS_DIM", "OPPONENT_Y", "STAY", "UP",
    "PerturbedParams", "PerturbedPong", "PerturbedState", "PongConfig", "PongConfigError", "PongParams", "PongState",
    "SinglePlayerPong", "collect_demonstrations",
    "crossing_y", "env_and_params", "evaluate_expert", "evaluate_model", "expert_action", "game_seeds", "is_perturbed", "obs_shape",
    "record_model", "step_events", "to_params",
]
