"""The environment registry: one place mapping env names to their four functions.

    spec = get_env("pong")
    config = spec.make_config({"max_steps": 500})     # the env's config dataclass
    spec.obs_shape(config)                            # (5,)
    demos = spec.collect(config, num_episodes=4, seed=0, epsilon=0.0, num_envs=8, progress=False)
    tally = spec.evaluate(model, config, num_games=8, seed=123, num_envs=8, progress=False)

Modules are imported lazily (ALE is only loaded when ``atari_pong`` is used). Each env's
collect/evaluate functions get one uniform keyword interface here; ``num_envs`` is passed
only to the environments that run games in a vector env (Atari), the JAX env vmaps all.
Register another environment with `register_env`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any


class UnknownEnvError(ValueError):
    """An environment name that is not registered, or an invalid env option."""


@dataclasses.dataclass(frozen=True)
class EnvEntry:
    """Where an environment's pieces live (``module:attribute`` strings, imported lazily)."""

    name: str
    config: str  # "module:ConfigClass"
    obs_shape: str  # "module:obs_shape"
    collect: str  # "module:collect_demonstrations"
    evaluate: str  # "module:evaluate_model"
    vectorized_by_num_envs: bool = False  # collect/evaluate take num_envs
    metadata_env: str = ""  # the "env" value its datasets carry in their metadata
    metadata_config_key: str = "env_config"  # where its datasets store the env config


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class EnvSpec:
    """The resolved functions of one registered environment."""

    def __init__(self, entry: EnvEntry):
        self.entry = entry
        self.name = entry.name

    @property
    def config_class(self) -> type:
        return _load(self.entry.config)

    def make_config(self, options: dict[str, Any] | None = None):
        """The env's config dataclass from plain options; unknown options fail with the valid ones."""
        cls = self.config_class
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UnknownEnvError(
                f"Env '{self.name}' has no option {', '.join(map(repr, unknown))}. "
                f"Valid options: {', '.join(sorted(known))}."
            )
        for f in dataclasses.fields(cls):  # tuples arrive as lists from config files
            if f.name in options and isinstance(options[f.name], list):
                options[f.name] = tuple(options[f.name])
        return cls(**options)

    def config_dict(self, config) -> dict[str, Any]:
        """JSON-able form of an env config."""
        to_dict = getattr(config, "to_dict", None)
        data = to_dict() if callable(to_dict) else dataclasses.asdict(config)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def expected_metadata(self, config, *, epsilon: float, seed: int) -> dict[str, Any]:
        """Metadata a dataset for this config must carry (checked when it is loaded)."""
        return {
            "env": self.entry.metadata_env or self.name,
            self.entry.metadata_config_key: self.config_dict(config),
            "epsilon": float(epsilon),
            "seed": int(seed),
        }

    def obs_shape(self, config) -> tuple[int, ...]:
        return tuple(_load(self.entry.obs_shape)(config))

    def collect(self, config, *, num_episodes: int, seed: int, epsilon: float = 0.0,
                num_envs: int = 8, progress: bool = True):
        """Expert demonstrations (`tnd.data.demonstrations.Demonstrations`)."""
        kwargs = dict(num_episodes=num_episodes, seed=seed, epsilon=epsilon, progress=progress)
        if self.entry.vectorized_by_num_envs:
            kwargs["num_envs"] = num_envs
        return _load(self.entry.collect)(config, **kwargs)

    def evaluate(self, model, config, *, num_games: int, seed: int, num_envs: int = 8, progress: bool = False):
        """Closed-loop greedy play of ``model``: a `tnd.evaluation.metrics.GameTally`."""
        kwargs = dict(num_games=num_games, seed=seed, progress=progress)
        if self.entry.vectorized_by_num_envs:
            kwargs["num_envs"] = num_envs
        return _load(self.entry.evaluate)(model, config, **kwargs)


_ENVS: dict[str, EnvEntry] = {}


def register_env(entry: EnvEntry) -> None:
    """Adds (or replaces) an environment."""
    _ENVS[entry.name] = entry


def env_names() -> list[str]:
    return sorted(_ENVS)


def get_env(name: str) -> EnvSpec:
    if name not in _ENVS:
        raise UnknownEnvError(f"Unknown env '{name}'. Valid envs: {', '.join(env_names())}.")
    return EnvSpec(_ENVS[name])


register_env(EnvEntry(
    name="atari_pong",
    config="tnd.envs.atari_pong:AtariPongConfig",
    obs_shape="tnd.envs.atari_pong:obs_shape",
    collect="tnd.data.atari_collect:collect_demonstrations",
    evaluate="tnd.evaluation.atari_rollout:evaluate_model",
    vectorized_by_num_envs=True,
    metadata_env="ALE/Pong-v5",
    metadata_config_key="env_config",
))
register_env(EnvEntry(
    name="pong",
    config="tnd.envs.pong:PongConfig",
    obs_shape="tnd.envs.pong:obs_shape",
    collect="tnd.data.pong_collect:collect_demonstrations",
    evaluate="tnd.evaluation.pong_rollout:evaluate_model",
    metadata_env="pong",
    metadata_config_key="config",
))
