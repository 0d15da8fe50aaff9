"""The environment registry: env names -> `EnvDefinition`, and gymnax-style `make`.

    env, params = make("pong", max_steps=500)              # SinglePlayerPong, PongParams
    definition = get_env("pong")
    config = definition.make_config({"max_steps": 500})   # the env's config dataclass
    definition.obs_shape(config), definition.num_actions(config)   # (5,), 3
    demos = definition.collect(config, num_episodes=4, seed=0, epsilon=0.1, progress=False)
    tally = definition.evaluate(model, config, num_games=8, seed=123)   # the env's Tally
    tally.summary()                                        # {"catch_rate": ..., ...}

Each environment package registers itself when imported (``import tnd.envs`` imports the
built-in ``pong`` and ``atari_pong``); a plugin module registers another with
``register_env(EnvDefinition(...))`` (see ``tests/test_env_plugin.py``). Nothing here
imports the layers above (data, evaluation, training): they import the envs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from tnd.envs.demonstrations import Demonstrations
from tnd.envs.recording import Recording, counts_in_words
from tnd.envs.rollout import Trajectory
from tnd.envs.tally import Tally
from tnd.registry import Registry, check_options

DEFAULT_TABLE_NOTE = "Our runs' environment: {envs}; the paper's protocol is {protocol}."


class UnknownEnvError(ValueError):
    """An environment name that is not registered, or an invalid env option."""


@dataclasses.dataclass(frozen=True)
class DatasetNaming:
    """How an env's datasets name it in their metadata (checked whenever one is loaded).

    Datasets on disk carry the keys their env's collect wrote when they were made; they stay
    valid, at their addresses, only while these stay as written, so they are part of what an
    env is: ``env`` the value under ``"env"`` (None: the env's registered name) and
    ``config_key`` the key holding the env config.
    """

    env: str | None = None
    config_key: str = "env_config"


@dataclasses.dataclass(frozen=True)
class EnvDefinition:
    """One environment: its options, how to build it, collect expert data on it, evaluate, draw
    and describe it. Every env fills the same contract; what differs between envs is data here.

    * ``config``: a dataclass of the env's options (validated in its constructor).
    * ``make(config) -> (env, params)``: gymnax-style; ``env.num_actions`` and
      ``env.observation_space(params).shape`` give the model's action head and input.
    * ``collect_demonstrations(config, *, num_episodes, seed, epsilon, num_envs, progress)``
      -> `Demonstrations` (expert labels, ``epsilon`` random executed actions).
    * ``collect_mixed(config, model, *, beta, num_episodes, seed, num_envs, progress)`` ->
      `Demonstrations` (optional; DAgger needs it): games in which the executed action is the
      expert's with probability ``beta`` and the harness ``model``'s greedy one otherwise,
      every visited state labelled by the expert; ``metadata["student_agreement"]`` the
      share of steps where the model's choice equals the label. None: the expert cannot
      label the student's states.
    * ``evaluate_model(model, config, *, num_games, seed, num_envs, progress)`` -> ``tally``:
      greedy closed-loop play of a harness model.
    * ``evaluate_expert(config, *, num_games, seed, num_envs, progress)`` -> ``tally``
      (optional): the expert on the same games, the tables' reference row.
      (``num_envs``: games side by side in host emulators; a JAX env, whose games run in
      jitted batches, takes it and has no use for it.)
    * ``collects_in_workers``: ``collect_demonstrations`` also takes ``num_workers`` (processes
      sharing the games: 0 one per core, 1 in-process; the data must not depend on it); an env
      without it (a JAX env, whose games run in one jitted program) is never passed it.
    * ``tally``: the `Tally` subclass ``evaluate`` returns (its summary is the run's metrics).
    * ``expert``: names the expert ``collect_demonstrations`` plays (empty: not named). A named
      expert is part of every dataset's address and metadata, so demonstrations of another
      expert (an earlier version) are never reused.
    * ``dataset_naming``: how its datasets name it in their metadata (`DatasetNaming`).
    * ``draw_games(model, config, *, games, seed, steps, progress)`` -> `Recording`
      (optional): the first ``games`` evaluation games of ``seed``, ``steps`` steps each,
      drawn with their running counts (what ``tnd-render`` writes; None: not drawable).
    * ``describe_counts(counts) -> str``: a frame's counts line (default: name-value pairs).
    * ``record_model(model, config, *, num_games, seed)`` -> ``(tally, Trajectory)``
      (optional): the evaluation games with their observations, for measures along a game
      (``tnd-table --robustness``'s smoothness; None: not recorded).
    * ``table_note``: the tables' sentence on how its games relate to the paper's protocol
      (``{envs}``: the runs' envs, ``{protocol}``: the paper's); ``plays_paper_protocol``:
      its games are the paper's protocol, so the paper's figures stand beside ours.
    """

    name: str
    config: type
    make: Callable[[Any], tuple[Any, Any]]
    collect_demonstrations: Callable[..., Demonstrations]
    evaluate_model: Callable[..., Tally]
    tally: type[Tally]
    expert: str = ""
    evaluate_expert: Callable[..., Tally] | None = None
    dataset_naming: DatasetNaming = DatasetNaming()
    draw_games: Callable[..., Recording] | None = None
    describe_counts: Callable[[Mapping[str, int]], str] = counts_in_words
    record_model: Callable[..., tuple[Tally, Trajectory]] | None = None
    collect_mixed: Callable[..., Demonstrations] | None = None
    table_note: str = DEFAULT_TABLE_NOTE
    plays_paper_protocol: bool = False
    collects_in_workers: bool = False

    def __post_init__(self):  # a malformed definition is a plugin bug: say which part
        if not isinstance(self.name, str) or not self.name.strip():
            raise TypeError(f"An env needs a non-empty name, got {self.name!r}.")
        if not (isinstance(self.config, type) and dataclasses.is_dataclass(self.config)):
            raise TypeError(f"Env '{self.name}': config must be a dataclass type, got {self.config!r}.")
        if not (isinstance(self.tally, type) and issubclass(self.tally, Tally)):
            raise TypeError(f"Env '{self.name}': tally must be a subclass of tnd.envs.tally.Tally, got {self.tally!r}.")
        if not isinstance(self.dataset_naming, DatasetNaming):
            raise TypeError(f"Env '{self.name}': dataset_naming must be a DatasetNaming, got {self.dataset_naming!r}.")

    def make_config(self, options: dict[str, Any] | None = None):
        """The env's config dataclass from plain options; unknown options fail with the valid ones."""
        cls = self.config
        options = dict(options or {})
        check_options(f"Env '{self.name}'", options, [f.name for f in dataclasses.fields(cls)], UnknownEnvError)
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
            "env": self.dataset_naming.env or self.name,
            self.dataset_naming.config_key: self.config_dict(config),
            "epsilon": float(epsilon),
            "seed": int(seed),
            **self.expert_fields(),
        }

    def expert_fields(self) -> dict[str, str]:
        """``{"expert": name}`` for a named expert, else {}: part of a dataset's address and metadata."""
        return {"expert": self.expert} if self.expert else {}

    def obs_shape(self, config) -> tuple[int, ...]:
        """Shape of one observation (``env.observation_space(params).shape``)."""
        env, params = self.make(config)
        return tuple(int(n) for n in env.observation_space(params).shape)

    def num_actions(self, config) -> int:
        """Number of discrete actions (``env.num_actions``): the size of the model's action head."""
        env, _ = self.make(config)
        return int(env.num_actions)

    def max_game_steps(self, config) -> int | None:
        """The most steps one game of ``config`` lasts: its ``max_steps`` option (every env
        here ends or truncates a game there), or None for a config without one."""
        steps = getattr(config, "max_steps", None)
        return None if steps is None else int(steps)

    def collect(self, config, *, num_episodes: int, seed: int, epsilon: float = 0.0,
                num_envs: int = 8, progress: bool = True, num_workers: int = 1) -> Demonstrations:
        """Expert demonstrations (`collect_demonstrations`); their metadata carries
        `expected_metadata` where the env did not set those keys. ``num_workers`` reaches envs
        that `collects_in_workers` (0: one process per core; 1: in this process)."""
        workers = {"num_workers": num_workers} if self.collects_in_workers else {}
        demos = self.collect_demonstrations(config, num_episodes=num_episodes, seed=seed, epsilon=epsilon,
                                            num_envs=num_envs, progress=progress, **workers)
        expected = self.expected_metadata(config, epsilon=epsilon, seed=seed)
        return dataclasses.replace(demos, metadata={**expected, **demos.metadata})

    def collect_with_student(self, config, model, *, beta: float, num_episodes: int, seed: int,
                             num_envs: int = 8, progress: bool = True) -> Demonstrations:
        """DAgger's games (`collect_mixed`); their metadata carries `expected_metadata` (with
        ``epsilon`` 0) where the env did not set those keys. Requires `collect_mixed`."""
        if self.collect_mixed is None:
            raise UnknownEnvError(f"Env '{self.name}' has no collect_mixed: its expert cannot label a student's games.")
        demos = self.collect_mixed(config, model, beta=float(beta), num_episodes=int(num_episodes), seed=int(seed),
                                   num_envs=int(num_envs), progress=progress)
        expected = self.expected_metadata(config, epsilon=0.0, seed=seed)
        return dataclasses.replace(demos, metadata={**expected, **demos.metadata})

    def evaluate(self, model, config, *, num_games: int, seed: int, num_envs: int = 8, progress: bool = False) -> Tally:
        """Greedy closed-loop play of ``model`` (`evaluate_model`): the env's `tally`, one entry per game."""
        tally = self.evaluate_model(model, config, num_games=num_games, seed=seed, num_envs=num_envs, progress=progress)
        if not isinstance(tally, self.tally):
            raise TypeError(
                f"Env '{self.name}' evaluated to a {type(tally).__name__}, not its declared {self.tally.__name__}."
            )
        return tally

    def play_expert(self, config, *, num_games: int, seed: int, num_envs: int = 8,
                    progress: bool = False) -> Tally | None:
        """The expert on the games `evaluate` plays for ``seed`` (None: the env has no `evaluate_expert`)."""
        if self.evaluate_expert is None:
            return None
        return self.evaluate_expert(config, num_games=num_games, seed=seed, num_envs=num_envs, progress=progress)

    def table_sentence(self, envs: str, protocol: str) -> str:
        """`table_note` for the runs' ``envs`` and the paper's ``protocol``."""
        return self.table_note.format(envs=envs, protocol=protocol)


_ENVS: Registry[EnvDefinition] = Registry("env", UnknownEnvError, listed="Valid envs")


def register_env(definition: EnvDefinition) -> EnvDefinition:
    """Adds (or replaces) an environment; returns it."""
    if not isinstance(definition, EnvDefinition):
        raise TypeError(f"register_env takes an EnvDefinition, got {type(definition).__name__}.")
    return _ENVS.register(definition.name, definition)


def env_names() -> list[str]:
    """The registered envs, sorted."""
    return _ENVS.names()


def get_env(name: str) -> EnvDefinition:
    """The env registered as ``name`` (`UnknownEnvError` naming the valid ones)."""
    return _ENVS.get(name)


def find_env(name: str) -> EnvDefinition | None:
    """The env registered as ``name``, or None (a run's env whose plugin is not imported)."""
    return _ENVS.get(name) if name in _ENVS else None


def make(name: str, **options) -> tuple[Any, Any]:
    """``env, params`` of a registered env with the given options (gymnax's ``make``)."""
    definition = get_env(name)
    return definition.make(definition.make_config(options))
