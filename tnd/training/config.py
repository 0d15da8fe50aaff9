"""Plain dataclasses describing one behavior-cloning experiment.

These are the library's own types: the entry points build them from Hydra config (the
same dataclasses serve as Hydra's structured-config schemas, so a wrong type or unknown key
fails at start-up), and a notebook can build them by hand. Library code never sees Hydra.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Optional


@dataclasses.dataclass
class ModelSpec:
    """Which harness model and its options (``options`` go to the registered builder).

    ``options.wired: true`` wires a model that accepts a topology but does not use one by
    default (the CfC) to the graph group.
    """

    name: str = "lstm"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class GraphSpec:
    """A registered topology (used by graph-based models: tnd, sparse_rnn, wired cfc)."""

    name: str = "small_world"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: Optional[int] = None  # None: the experiment's seed


@dataclasses.dataclass
class EnvSpec:
    """An environment name from `tnd.envs.registry` and fields of its config dataclass."""

    name: str = "pong"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class DataSpec:
    """Demonstration dataset: how many expert episodes, perturbation, seed, cache root."""

    num_episodes: int = 16
    epsilon: float = 0.0
    seed: int = 0
    root: str = "data_cache"
    num_envs: int = 8
    path: Optional[str] = None  # a specific dataset folder instead of the config-addressed cache
    num_workers: int = 1  # collection processes (1: serial, 0: one per available core); changes no data


@dataclasses.dataclass
class TrainSpec:
    """Optimisation and logging schedule.

    ``class_balance``: ``none``; ``weight`` (cross-entropy weighted by inverse label
    frequency); ``sample`` (windows drawn with probability ~ mean inverse frequency).
    ``eval_every``/``checkpoint_every``/``log_every`` are in steps; 0 disables periodic ones.
    """

    steps: int = 1000
    batch_size: int = 32
    window: int = 64
    lr: float = 3e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    weight_decay: float = 1e-4
    clip_norm: float = 1.0
    class_balance: str = "weight"
    log_every: int = 25
    eval_every: int = 0
    checkpoint_every: int = 200
    max_to_keep: int = 2
    progress: bool = True
    devices: int = 0  # data parallel over this many local devices (0: all); results equal up to float order
    # Guards (they never change a valid run, so they are not part of the config hash):
    param_limit: float = 1.0e6  # an update that makes any |parameter| exceed this stops the run as diverged
    resume_with_changes: bool = False  # resume a folder whose checkpoint was saved under another config
    # the share of the available memory a run may plan on (tnd.app.memory refuses runs estimated
    # to need more, before anything is built); None: tnd.app.memory.DEFAULT_MEMORY_FRACTION (0.8)
    memory_fraction: Optional[float] = None


# TrainSpec fields that change no result of a valid run (left out of the config hash).
NON_RESULT_TRAIN_FIELDS = ("progress", "param_limit", "resume_with_changes", "devices", "memory_fraction")


@dataclasses.dataclass
class EvalSpec:
    """Closed-loop evaluation: held-out seeds (differ from data seeds), games, overrides.

    ``periodic_games`` is the cheap setting used every ``train.eval_every`` steps; it plays
    *validation* games (``validation_seed``), never the test games of ``seed``, so learning
    curves and tuning (``tnd-tune``) can choose without touching the test games.
    ``num_games`` is the full final evaluation on ``seed``. ``env_overrides`` replace env config fields
    for evaluation only (e.g. sticky actions).
    """

    num_games: int = 32
    periodic_games: int = 8
    seed: int = 1_000_003
    validation_seed: int = 2_000_003
    num_envs: int = 8
    env_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    progress: bool = False


@dataclasses.dataclass
class DaggerSpec:
    """DAgger (Ross, Gordon & Bagnell 2011) after behavior cloning; ``rounds: 0`` turns it off.

    Round 0 is plain behavior cloning on the expert data (``train.steps`` steps). Each later
    round ``r`` the student plays ``games_per_round`` games, executing the expert's action
    with probability ``beta_r`` and its own otherwise; the expert labels every visited
    state, the games join all earlier data and the student trains ``steps_per_round`` more
    steps (same parameters and optimizer). ``beta_r`` follows imitation's
    LinearBetaSchedule, ``min(1, max(0, (beta_rampdown_rounds - r) / beta_rampdown_rounds))``
    (rampdown 0: the student always acts), unless ``beta`` fixes it for every round.
    """

    rounds: int = 0
    games_per_round: int = 8
    beta_rampdown_rounds: int = 2
    beta: Optional[float] = None
    steps_per_round: int = 500


@dataclasses.dataclass
class ExperimentSpec:
    """Everything one training run needs; ``param_budget`` (if set) sizes the model."""

    model: ModelSpec = dataclasses.field(default_factory=ModelSpec)
    graph: GraphSpec = dataclasses.field(default_factory=GraphSpec)
    env: EnvSpec = dataclasses.field(default_factory=EnvSpec)
    data: DataSpec = dataclasses.field(default_factory=DataSpec)
    train: TrainSpec = dataclasses.field(default_factory=TrainSpec)
    eval: EvalSpec = dataclasses.field(default_factory=EvalSpec)
    seed: int = 0
    param_budget: Optional[int] = None
    # Python modules imported before anything is built (they register topologies, models,
    # envs; see tnd.training.plugins), e.g. plugins=[my_topologies]
    plugins: list[str] = dataclasses.field(default_factory=list)
    dagger: DaggerSpec = dataclasses.field(default_factory=DaggerSpec)


class SeedError(ValueError):
    """A seed that is not an integer from 0 to `MAX_SEED`."""


# JAX keys keep 32 bits of a seed: a larger one would silently repeat a smaller one (2**32 -> 0).
MAX_SEED = 2**32 - 1


def check_seed(name: str, value: Any, example: str | None = None) -> None:
    """One readable error unless ``value`` is an integer seed in ``[0, MAX_SEED]`` (``name``
    is the option that gave it, ``example`` a valid setting of it; default ``<name>=0``).
    ``jax.random.key`` takes a negative seed without a word."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= MAX_SEED:
        raise SeedError(f"{name} must be an integer from 0 to {MAX_SEED} (a seed), got {value!r}; "
                        f"e.g. {example or name + '=0'}.")


def validate_seeds(spec: ExperimentSpec) -> None:
    """Every seed an experiment is given (``seed``, ``graph.seed``, ``data.seed``,
    ``eval.seed``, ``eval.validation_seed``, ``model.options.graph_seed``) is a valid seed."""
    check_seed("seed", spec.seed)
    check_seed("data.seed", spec.data.seed)
    check_seed("eval.seed", spec.eval.seed)
    check_seed("eval.validation_seed", spec.eval.validation_seed)
    if spec.graph.seed is not None:
        check_seed("graph.seed", spec.graph.seed)
    if spec.model.options.get("graph_seed") is not None:
        check_seed("model.options.graph_seed", spec.model.options["graph_seed"])


def to_dict(spec: Any) -> dict[str, Any]:
    """JSON-able dict of a spec dataclass (for checkpoints and summaries).

    An `ExperimentSpec` without DAgger (``dagger.rounds == 0``) leaves ``dagger`` out, so
    its config hash, checkpoints and ``run.json`` read as they did before DAgger existed."""
    data = dataclasses.asdict(spec)
    if isinstance(spec, ExperimentSpec) and not spec.dagger.rounds:
        data.pop("dagger", None)
    return data


def from_dict(data: dict[str, Any]) -> ExperimentSpec:
    """Inverse of `to_dict` for an `ExperimentSpec`."""
    parts = {
        "model": ModelSpec, "graph": GraphSpec, "env": EnvSpec, "data": DataSpec,
        "train": TrainSpec, "eval": EvalSpec, "dagger": DaggerSpec,
    }
    kwargs = {k: cls(**data[k]) for k, cls in parts.items() if k in data}
    for k in ("seed", "param_budget", "plugins"):
        if k in data:
            kwargs[k] = data[k]
    return ExperimentSpec(**kwargs)
