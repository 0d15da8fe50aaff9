"""Single-player Pong in pure JAX, registered as env ``pong`` (the paper's protocol).

    env, params = tnd.envs.make("pong", max_steps=500)   # SinglePlayerPong, PongParams

Everything of this env lives here: the game (`env`: `SinglePlayerPong`), its settings
(`config`: `PongConfig`, 3 actions), its state and the pieces of a step (`physics`), the same
game behind perturbations (`perturb`: observation noise, action delay, sticky actions,
occlusion), its analytic expert (`expert`), what a step counts (`events`: the `CatchTally`
shared with Atari Pong), expert demonstrations (`collect`), greedy evaluation (`evaluate`),
RGB frames (`render`, imported on demand) and its evaluation games drawn (`recording`).
Collection and evaluation are the same `tnd.envs.rollout.rollout`.
"""

from __future__ import annotations

from tnd.envs.catch_tally import CatchTally
from tnd.envs.pong.collect import collect_demonstrations, collect_mixed
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
from tnd.envs.demonstrations import Demonstrations
from tnd.envs.pong import recording
from tnd.envs.registry import DatasetNaming, EnvDefinition, register_env


def env_and_params(config: PongConfig) -> tuple[SinglePlayerPong | PerturbedPong, PongParams]:
    """The env and its parameters pytree for ``config`` (behind its perturbations, if any)."""
    return env_for(config, SinglePlayerPong(config))


def _collect(config: PongConfig, *, num_episodes: int, seed: int, epsilon: float, num_envs: int,
             progress: bool) -> Demonstrations:
    """`collect_demonstrations` under the env contract (``num_envs`` has no use: games run in jitted batches)."""
    return collect_demonstrations(config, num_episodes=num_episodes, seed=seed, epsilon=epsilon, progress=progress)


def _collect_mixed(config: PongConfig, model, *, beta: float, num_episodes: int, seed: int, num_envs: int,
                   progress: bool) -> Demonstrations:
    """`collect_mixed` (DAgger's games) under the env contract (``num_envs`` has no use here)."""
    return collect_mixed(config, model, beta=beta, num_episodes=num_episodes, seed=seed, progress=progress)


def _evaluate(model, config: PongConfig, *, num_games: int, seed: int, num_envs: int, progress: bool) -> CatchTally:
    """`evaluate_model` under the env contract (``num_envs`` has no use: games run in jitted batches)."""
    return evaluate_model(model, config, num_games=num_games, seed=seed, progress=progress)


def _evaluate_expert(config: PongConfig, *, num_games: int, seed: int, num_envs: int, progress: bool) -> CatchTally:
    """`evaluate_expert` under the env contract (``num_envs`` has no use: games run in jitted batches)."""
    return evaluate_expert(config, num_games=num_games, seed=seed, progress=progress)


DEFINITION = register_env(EnvDefinition(
    name="pong",
    config=PongConfig,
    make=env_and_params,
    collect_demonstrations=_collect,
    collect_mixed=_collect_mixed,
    evaluate_model=_evaluate,
    evaluate_expert=_evaluate_expert,
    tally=CatchTally,
    dataset_naming=DatasetNaming(env="pong", config_key="config"),  # as its datasets were first written
    draw_games=recording.draw_games,
    describe_counts=recording.describe_counts,
    record_model=record_model,
    table_note="Our runs' environment: {envs} (single-player Pong, the paper's protocol).",
    plays_paper_protocol=True,
))

__all__ = [
    "COLLECT_STREAM", "DEFINITION", "DOWN", "EVAL_STREAM", "NUM_ACTIONS", "OBS_DIM", "OPPONENT_Y", "STAY", "UP",
    "PerturbedParams", "PerturbedPong", "PerturbedState", "PongConfig", "PongConfigError", "PongParams", "PongState",
    "SinglePlayerPong", "collect_demonstrations", "collect_mixed",
    "crossing_y", "env_and_params", "evaluate_expert", "evaluate_model", "expert_action", "game_seeds", "is_perturbed", "obs_shape",
    "record_model", "step_events", "to_params",
]
