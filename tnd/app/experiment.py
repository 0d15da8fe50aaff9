"""The application: one behavior-cloning experiment end to end, from plain dataclasses (no Hydra).

It sits above the library's layers (envs, data, models, training, evaluation) and is the
only module that joins them; the entry points in ``experiments/`` call it.

    summary = run_experiment(spec, run_dir)          # what tnd-train does
    summaries = run_seeds(spec, seeds, run_dirs)      # tnd-train seeds=[...]: the seeds as one program

A trained run comes back from its folder through `tnd.app.restore` (`restore_model`,
`evaluate_checkpoint`: what tnd-eval does); a stack's shared program through `tnd.app.stacks`.

Data flow: env config -> dataset (loaded or collected, cached by config) -> windows on
device -> model (optionally sized to ``param_budget``) -> `train` (resumable) -> closed-loop
evaluation on held-out seeds -> ``summary.json``. Every check that needs no computation
(names, sizes, options) runs first (`set_up`), so bad input fails before any data is
collected or any model is compiled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from tnd.app.dagger import run_dagger, validate_dagger
from tnd.app.memory import check_games_fit, check_resources
from tnd.app.datasets import load_dataset
from tnd.app.spec import ExperimentError, check_positive
from tnd.app.stacks import common_program_shape, program_groups
from tnd.data.windows import make_windows
from tnd.envs import EnvDefinition, get_env
from tnd.evaluation.metrics import summarize
from tnd.graph import topology_names
from tnd.models import (
    build_model, effective_param_count, graph_mode, holds_graph_as_data, model_option_names, width_option,
)
from tnd.models.budget import width_for_budget
from tnd.registry import check_options
from tnd.run_folder import (
    ERROR_FILE, PLUGINS_FILE, SUMMARY_FILE, eval_metrics, run_folder_lock, seed_overrides, write_json,
    write_run_description,
)
from tnd.training.config import (
    NON_RESULT_TRAIN_FIELDS, EvalSpec, ExperimentSpec, to_dict, validate_seeds,
)
from tnd.training.loop import SeedRun, TrainResult, train_seeds, validate_train_spec
from tnd.training.loss import class_weights
from tnd.training.plugins import import_plugins, plugin_origins
from tnd.workers import check_num_workers

log = logging.getLogger(__name__)  # tnd-train routes it to the run folder's train.log

# Env options added after runs were hashed, with the default those runs played under: at that
# value they are left out of `config_hash`, so earlier runs keep their hash.
HASH_NEUTRAL_ENV_OPTIONS = {"obs_history": 1, "expert": "lookahead"}  # atari_pong
# Env options that matter only beside another option's value (option -> (that option, value)):
# left out of `config_hash` otherwise (the rule expert's offset means nothing to the lookahead).
HASH_DEPENDENT_ENV_OPTIONS = {"rule_offset": ("expert", "rule")}  # atari_pong


# ------------------------------------------------------------------------- helpers
def config_hash(spec: ExperimentSpec) -> str:
    """A short stable hash of everything that determines the results (not progress bars)."""
    data = to_dict(spec)
    for name in NON_RESULT_TRAIN_FIELDS:
        data["train"].pop(name, None)
    data["eval"].pop("progress", None)
    data["data"].pop("root", None)
    options = data.get("env", {}).get("options") or {}
    for name, default in HASH_NEUTRAL_ENV_OPTIONS.items():
        if name in options and options[name] == default:
            del options[name]
    for name, (other, value) in HASH_DEPENDENT_ENV_OPTIONS.items():
        if name in options and options.get(other) != value:
            del options[name]
    data["data"].pop("num_workers", None)  # how many processes collect changes no data
    if not data.get("plugins"):  # runs without plugins keep the hash they had before plugins existed
        data.pop("plugins", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def validate_sizes(spec: ExperimentSpec) -> None:
    """Every count and size in the spec is positive (one readable error otherwise)."""

    validate_train_spec(spec.train)
    validate_seeds(spec)
    validate_dagger(spec.dagger)
    check_positive("data.num_episodes", spec.data.num_episodes)
    check_positive("data.num_envs", spec.data.num_envs)
    check_num_workers(spec.data.num_workers, "data.num_workers")
    if not 0.0 <= float(spec.data.epsilon) <= 1.0:
        raise ExperimentError(f"data.epsilon must lie in [0, 1], got {spec.data.epsilon}.")
    check_positive("eval.num_games", spec.eval.num_games)
    check_positive("eval.periodic_games", spec.eval.periodic_games)
    check_positive("eval.num_envs", spec.eval.num_envs)
    if int(spec.eval.validation_seed) == int(spec.eval.seed):
        raise ExperimentError(
            f"eval.validation_seed equals eval.seed ({spec.eval.seed}): validation games (periodic "
            "evaluation, tuning) must differ from the test games. Choose another eval.validation_seed."
        )
    if spec.param_budget is not None:
        check_positive("param_budget", spec.param_budget)
    for key, value in spec.model.options.items():
        if isinstance(value, int) and not isinstance(value, bool) and value <= 0 and key != "graph_seed":
            raise ExperimentError(f"model.options.{key} must be positive, got {value}.")


# ------------------------------------------------------------------------- model
def uses_graph(model: str, wired: bool | None) -> bool:
    """Whether ``model`` runs on the graph group's topology: a graph-based model always
    (``tnd``, ``sparse_rnn``) unless ``wired`` is false; an optionally wired one (the CfC) when
    ``model.options.wired`` is true."""
    mode = graph_mode(model)
    if wired is None:
        return mode == "always"
    if wired and mode is None:
        raise ExperimentError(f"Model '{model}' cannot be wired to a graph (no topology option).")
    return bool(wired) and mode is not None


def graph_in_structure(model: str, wired: bool | None) -> bool:
    """Whether a seed's graph is part of the model's structure (the sparse RNN, a wired CfC),
    so that seeds with different graphs cannot share one program: a model that uses a graph
    and does not hold it as data (TND does: `tnd.app.stacks`)."""
    return uses_graph(model, wired) and not holds_graph_as_data(model)


def model_options(spec: ExperimentSpec) -> dict[str, Any]:
    """The builder options of ``spec.model``, with the graph group merged in when used.

    A model uses the graph group when it is registered as graph-based: always (``tnd``,
    ``sparse_rnn``) or, when ``model.options.wired`` is true, optionally (the wired CfC),
    unless ``model.options.topology`` names a topology itself (with
    ``topology_options``): then that one is used (TND's tuned config does this; the entry
    points clear it when ``graph=`` is given on the command line). Unknown options fail
    with the valid ones.
    """

    valid = model_option_names(spec.model.name)
    options = dict(spec.model.options)
    wired = options.pop("wired", None)
    check_options(f"Model '{spec.model.name}'", options, None if valid is None else [v for v in valid if v != "graph"],
                  ExperimentError)  # the graph group, not an option, gives a model its graph
    graph_based = uses_graph(spec.model.name, wired)
    if graph_based and options.get("topology") is not None:  # the model's own topology (conf/tuned/tnd.yaml)
        if options["topology"] not in topology_names():
            raise ExperimentError(
                f"Unknown model.options.topology '{options['topology']}'. Valid graphs: {', '.join(topology_names())}."
            )
        options["topology_options"] = dict(options.get("topology_options") or {})
        options.setdefault("graph_seed", int(spec.seed) if spec.graph.seed is None else int(spec.graph.seed))
    elif graph_based:
        if not spec.graph.name:
            raise ExperimentError(
                "graph.name is empty: name the topology your plugin registers, e.g. "
                "graph=plugin graph.name=my_ring plugins=[my_topologies]."
            )
        if spec.graph.name not in topology_names():
            raise ExperimentError(
                f"Unknown graph '{spec.graph.name}'. Valid graphs: {', '.join(topology_names())}."
                + (" A topology of your own: register it in a module and add plugins=[module]." if not spec.plugins else "")
            )
        options["topology"] = spec.graph.name
        options["topology_options"] = dict(spec.graph.options)
        options.setdefault("graph_seed", int(spec.seed) if spec.graph.seed is None else int(spec.graph.seed))
    return options


def build_agent(
    spec: ExperimentSpec, obs_shape: tuple[int, ...], num_actions: int, *, program_shape: Any = None,
) -> tuple[nnx.Module, dict[str, Any], int]:
    """Builds the model for the env's ``obs_shape`` and ``num_actions``; returns
    ``(model, resolved_options, num_params)``.

    With ``spec.param_budget`` the width option is chosen by `tnd.models.budget`
    (`width_for_budget`, the search `build_for_budget` runs) and recorded in the resolved
    options, so a checkpoint can be rebuilt exactly without searching again.
    ``program_shape`` (a model that holds its graph as data, `align_programs`) pads its
    arrays so that other seeds share its program; it changes nothing the model computes and
    is not recorded in the options.
    """

    options = model_options(spec)
    if spec.param_budget is not None:
        options.pop(width_option(spec.model.name), None)  # the budget replaces the group's width
        width, _ = width_for_budget(
            spec.model.name, int(spec.param_budget), obs_shape=obs_shape, num_actions=num_actions, **options
        )
        options[width_option(spec.model.name)] = int(width)
    extra = {} if program_shape is None else {"program_shape": program_shape}
    model = build_model(
        spec.model.name, obs_shape=obs_shape, num_actions=num_actions, rngs=nnx.Rngs(int(spec.seed)), **options, **extra
    )
    return model, options, effective_param_count(model)


def align_programs(specs: list[ExperimentSpec], setups: list[RunSetup]) -> list[RunSetup]:
    """The seeds of a stack rebuilt to one program shape where their models hold graphs that
    differ in fan-in, fan-out or rounds per step (`tnd.app.stacks.common_program_shape`)."""
    common = common_program_shape([p.model for p in setups])
    if common is None:
        return setups
    return [dataclasses.replace(p, model=build_agent(spec, p.obs_shape, p.num_actions, program_shape=common)[0])
            for spec, p in zip(specs, setups)]


def architecture(spec: ExperimentSpec, options: dict[str, Any], obs_shape, num_actions: int,
                num_params: int) -> dict[str, Any]:
    """What identifies the model architecture of a checkpoint."""
    return {
        "model": spec.model.name, "options": options, "obs_shape": list(obs_shape),
        "num_actions": int(num_actions), "num_params": int(num_params), "env": spec.env.name,
    }


# ------------------------------------------------------------------------- evaluation
def eval_env_config(env: EnvDefinition, env_options: dict[str, Any], eval_spec: EvalSpec):
    """The env config for evaluation: the training env's options with ``env_overrides``."""
    return env.make_config({**dict(env_options), **dict(eval_spec.env_overrides)})


def evaluate(model: nnx.Module, env: EnvDefinition, config, *, num_games: int, seed: int,
             num_envs: int, progress: bool = False, setting: str = "eval.num_games") -> dict[str, Any]:
    """Closed-loop greedy games -> the env's tally pooled into its metrics (`summarize`).

    ``setting`` names where ``num_games`` came from, for `check_games_fit`'s message."""

    check_games_fit(env, num_games, setting)
    model.eval()  # nnx: deterministic mode (dropout off) wherever a submodule has one
    tally = env.evaluate(model, config, num_games=int(num_games), seed=int(seed), num_envs=int(num_envs),
                         progress=progress)
    return summarize(tally)


# ------------------------------------------------------------------------- experiment
@dataclasses.dataclass
class RunSetup:
    """What `set_up` resolved for one run: env definition, configs, model, options, sizes."""

    env: EnvDefinition
    env_config: Any
    eval_config: Any
    obs_shape: tuple[int, ...]
    num_actions: int
    model: nnx.Module
    options: dict[str, Any]
    num_params: int


def set_up(spec: ExperimentSpec, *, seeds: int = 1) -> RunSetup:
    """All cheap checks and the model, before any data is touched.

    The last check, before anything is built, is `tnd.app.memory.check_resources`: a run
    (``seeds`` of it stacked in one program) whose graph would take too long to build, or
    that needs more memory than this machine has, is refused with one line.
    """
    import_plugins(spec.plugins)
    validate_sizes(spec)
    env = get_env(spec.env.name)
    validate_dagger(spec.dagger, env)
    env_config = env.make_config(spec.env.options)
    eval_config = eval_env_config(env, spec.env.options, spec.eval)
    obs_shape = env.obs_shape(env_config)
    num_actions = env.num_actions(env_config)
    check_resources(spec, obs_shape, num_actions, model_options(spec), seeds=seeds, env_config=env_config)
    check_games_fit(env, spec.eval.num_games)  # the final evaluation, refused now rather than after training
    model, options, num_params = build_agent(spec, obs_shape, num_actions)
    return RunSetup(env, env_config, eval_config, obs_shape, num_actions, model, options, num_params)


def run_experiment(
    spec: ExperimentSpec, run_dir: str | Path, *, on_eval: Callable[[int, dict[str, Any]], None] | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Trains and evaluates one model; writes ``run.json`` (the spec and ``overrides``, the
    ones it was loaded with: `tnd.app.load_spec`), then ``summary.json`` (and logs, checkpoints).

    Rerunning with the same ``run_dir`` resumes from its latest checkpoint. ``on_eval(step,
    metrics)`` sees every periodic (validation-game) evaluation; it may raise to stop the run
    (the tuner's pruner does). One process at a time: a second writer of the same folder
    gets `RunFolderBusy`.
    """
    run_dir = Path(run_dir)
    with run_folder_lock(run_dir):
        return _run_locked([spec], [run_dir], on_eval, [list(overrides or [])])[0]


def run_seeds(spec: ExperimentSpec, seeds: list[int], run_dirs: list[str | Path], *,
              overrides: list[str] | None = None) -> list[dict[str, Any]]:
    """``spec`` for each of ``seeds``, trained as one jitted program (`tnd.training.loop.train_seeds`).

    Seed ``seeds[i]`` writes the run folder ``run_dirs[i]`` exactly as `run_experiment` would
    (checkpoints, metrics, summary; a rerun resumes every seed) and its results equal a
    separate run's up to float summation order; its ``run.json`` names ``seed=<k>`` among
    ``overrides`` as a run of that seed alone would. The seeds' models must share their structure:
    TND and the sparse RNN need one graph for all (``graph.seed``). Returns the summaries.
    """
    if len(seeds) != len(run_dirs) or not seeds:
        raise ExperimentError(f"run_seeds needs one run folder per seed, got {len(seeds)} seeds and {len(run_dirs)} folders.")
    specs = [dataclasses.replace(spec, seed=int(seed)) for seed in seeds]
    folders = [Path(d) for d in run_dirs]
    with contextlib.ExitStack() as held:
        for folder in folders:
            held.enter_context(run_folder_lock(folder))
        return _run_locked(specs, folders, None, [seed_overrides(list(overrides or []), s) for s in seeds])


def _run_locked(specs: list[ExperimentSpec], run_dirs: list[Path], on_eval,
                overrides: list[list[str]]) -> list[dict[str, Any]]:
    """`run_experiment` (one spec) or `run_seeds` while holding the run folders' locks.

    The specs differ at most in seed, so they share the dataset, windows and class weights;
    with DAgger (``dagger.rounds > 0``, `tnd.app.dagger`) each seed runs its rounds in turn.
    """
    setups = align_programs(specs, [set_up(spec, seeds=len(specs)) for spec in specs])
    spec, p = specs[0], setups[0]
    for run_spec, run_p, run_dir, run_overrides in zip(specs, setups, run_dirs, overrides):
        write_run_description(run_dir, to_dict(run_spec), run_overrides)
        if run_spec.plugins:
            write_json(run_dir / PLUGINS_FILE, plugin_origins(run_spec.plugins))
        log.info("run %s: model=%s (%d parameters, options %s) env=%s seed=%d, %d steps", run_dir,
                 run_spec.model.name, run_p.num_params, run_p.options, run_spec.env.name, run_spec.seed,
                 run_spec.train.steps)
    demos = load_dataset(spec.data, p.env, p.env_config, progress=spec.train.progress)
    if tuple(demos.obs_shape) != tuple(p.obs_shape):
        raise ExperimentError(
            f"The dataset's observations have shape {demos.obs_shape}, but env '{spec.env.name}' with these "
            f"options gives {p.obs_shape}. Collect a dataset for this env config (tnd-collect)."
        )

    def periodic_eval(model, step):
        metrics = evaluate(model, p.env, p.eval_config, num_games=spec.eval.periodic_games,
                           seed=spec.eval.validation_seed, num_envs=spec.eval.num_envs, setting="eval.periodic_games")
        if on_eval is not None:
            on_eval(step, metrics)
        return metrics

    members = [
        SeedRun(run_p.model, int(run_spec.seed), run_dir,
               architecture(run_spec, run_p.options, run_p.obs_shape, run_p.num_actions, run_p.num_params),
               to_dict(run_spec), periodic_eval)
        for run_spec, run_p, run_dir in zip(specs, setups, run_dirs)
    ]
    if spec.dagger.rounds:  # each seed's student plays its own games: the seeds train one after another
        return [_finish(run_spec, run_p, *run_dagger(member, run_spec, run_p.env, run_p.env_config, demos, run_dir,
                                                     num_actions=run_p.num_actions), run_dir)
                for member, run_spec, run_p, run_dir in zip(members, specs, setups, run_dirs)]
    windows = make_windows(demos, spec.train.window, num_actions=p.num_actions, class_balance=spec.train.class_balance)
    weights = class_weights(demos.actions, p.num_actions, spec.train.class_balance)
    groups = program_groups([run_p.model for run_p in setups])
    if len(groups) > 1:
        log.warning("seeds %s: their models differ in structure (e.g. graphs with different edge counts), so they "
                    "train as %d programs one after another: %s", [s.seed for s in specs], len(groups),
                    [[specs[i].seed for i in g] for g in groups])
    results: list[TrainResult] = [None] * len(members)  # type: ignore[list-item]
    for group in groups:
        trained = train_seeds([members[i] for i in group], windows, spec.train, class_weights=weights)
        for i, result in zip(group, trained):
            results[i] = result
    return [_finish(run_spec, run_p, result, demos, run_dir)
            for run_spec, run_p, result, run_dir in zip(specs, setups, results, run_dirs)]


def _finish(spec: ExperimentSpec, p: RunSetup, result: TrainResult, demos, run_dir: Path) -> dict[str, Any]:
    """The final evaluation on the test games and ``summary.json`` of one trained run."""
    t0 = time.perf_counter()
    final = evaluate(p.model, p.env, p.eval_config, num_games=spec.eval.num_games, seed=spec.eval.seed,
                     num_envs=spec.eval.num_envs, progress=spec.eval.progress)
    eval_seconds = time.perf_counter() - t0
    log.info("final evaluation (%d test games, seed %d) in %.1f s: %s", spec.eval.num_games, spec.eval.seed,
             eval_seconds, {k: final[k] for k in ("catch_rate", "catches_per_round", "score") if k in final})
    summary = {
        "model": spec.model.name,
        "env": spec.env.name,
        "seed": int(spec.seed),
        "graph": p.options.get("topology"),
        **eval_metrics(final),  # the evaluation's steps as eval_steps, not to be read as train_steps
        "num_params": int(p.num_params),
        "model_options": p.options,
        "train_seconds": result.train_seconds,
        "eval_seconds": eval_seconds,
        "train_steps": result.step,
        "resumed_from": result.resumed_from,
        "final_loss": result.last_metrics.get("loss"),
        "final_accuracy": result.last_metrics.get("accuracy"),
        "timesteps_per_s": result.timesteps_per_s,
        "host_fraction": result.host_fraction,
        "dataset_steps": demos.num_steps,
        "dataset_episodes": demos.num_episodes,
        "config_hash": config_hash(spec),
        "params_sha256": params_digest(p.model),
    }
    write_json(run_dir / SUMMARY_FILE, summary)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    log.info("wrote %s", run_dir / SUMMARY_FILE)
    return summary


def params_digest(model: nnx.Module) -> str:
    """SHA-256 over the trained parameters' bytes: equal digests = bit-identical parameters."""

    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)):
        digest.update(np.asarray(leaf).tobytes())
    return digest.hexdigest()[:16]


# Wall-clock fields of a summary (everything else is deterministic given config and seed).
WALL_CLOCK_FIELDS = ("train_seconds", "eval_seconds", "timesteps_per_s", "host_fraction")
