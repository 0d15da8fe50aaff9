"""A finished table's runs measured again, no retraining: under perturbations, blind, and for smoothness.

    settings = load_perturbations("conf/table/robustness.yaml")
    measurement = measure_run(run_dir, settings.select(None), settings=settings)
    measurements = measure_runs(records, columns, settings=settings)       # every finished run
    measure_runs(records, settings.select(["none"]), settings=settings, smoothness=False, games="validation")

Each run's latest intact checkpoint plays its own test games (the run's ``eval.seed`` and
``eval.num_games``, so the unperturbed column repeats the table's evaluation) once per
column, with the column's env options on top of the run's; or, with ``games="validation"``,
its validation games (``eval.validation_seed``: those one may choose between runs on). The
smoothness of its hidden state is measured on the first ``smoothness.games`` unperturbed test games
(`hidden_state_smoothness`). Every measurement is kept in the run folder
(``robustness.json``, keyed by checkpoint step and the column's env options), so an
interrupted command resumes and a finished one re-renders in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from tnd.app.experiment import eval_env_config, evaluate
from tnd.app.restore import restore_model
from tnd.envs import get_env
from tnd.evaluation.robustness import (
    Perturbation,
    RobustnessError,
    RobustnessSettings,
    RunMeasurement,
)
from tnd.run_folder import write_json

CACHE_FILE = "robustness.json"


def hidden_state_smoothness(model, observations: np.ndarray, *, burn_in: int) -> dict[str, float]:
    """Mean relative step ‖h_t − h_{t−1}‖ / ‖h_t‖ and the mean largest finite-time Lyapunov
    exponent of ``model``'s carry along ``observations [G, T, *obs]`` (closed-loop test games)."""
    from tnd.analysis import model_lyapunov, state_trajectory

    flat = np.asarray(state_trajectory(model, jnp.asarray(observations)).flat, np.float64)  # [G, T, D]
    steps = np.linalg.norm(np.diff(flat, axis=1), axis=-1)
    norms = np.linalg.norm(flat[:, 1:], axis=-1)
    relative = steps / np.maximum(norms, 1e-12)
    lyapunov = np.asarray(model_lyapunov(model, jnp.asarray(observations), burn_in=int(burn_in)))[:, 0]
    return {"relative_step": float(relative.mean()), "lyapunov": float(lyapunov.mean())}


def _cache_key(column: Perturbation, options: dict[str, Any], num_games: int, seed: int) -> str:
    return json.dumps({"column": column.name, "options": options, "num_games": num_games, "seed": seed},
                      sort_keys=True, default=str)


def _read_cache(path: Path, step: int) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data.get("entries", {}) if isinstance(data, dict) and data.get("checkpoint_step") == step else {}


GAMES = ("test", "validation")  # which games a measurement plays: the run's eval.seed or eval.validation_seed


def measure_run(run_dir: str | Path, columns: Sequence[Perturbation], *, settings: RobustnessSettings,
                smoothness: bool = True, on_column: Callable[[str], None] | None = None,
                games: str = "test") -> RunMeasurement:
    """One run's metrics in every column (and its smoothness), from cache where measured before.

    ``games``: ``"test"`` plays the run's test games (``eval.seed``: the unperturbed column
    repeats the table's evaluation), ``"validation"`` its validation games
    (``eval.validation_seed``: what a choice between finished sweeps may look at)."""
    if games not in GAMES:
        raise RobustnessError(f"games must be one of {', '.join(GAMES)}, got {games!r}.")
    run_dir = Path(run_dir)
    model, spec, meta = restore_model(run_dir)
    env = get_env(spec.env.name)
    base = eval_env_config(env, spec.env.options, spec.eval)
    cache_path, step = run_dir / CACHE_FILE, int(meta["step"])
    cache = _read_cache(cache_path, step)
    num_games = int(spec.eval.num_games)
    seed = int(spec.eval.validation_seed if games == "validation" else spec.eval.seed)
    results: dict[str, dict[str, float]] = {}
    for column in columns:
        changes = column.options(base)
        key = _cache_key(column, changes, num_games, seed)
        if key not in cache:
            config = env.make_config({**env.config_dict(base), **changes})
            metrics = evaluate(model, env, config, num_games=num_games, seed=seed, num_envs=int(spec.eval.num_envs))
            cache[key] = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
            write_json(cache_path, {"checkpoint_step": step, "entries": cache})
        results[column.name] = cache[key]
        if on_column is not None:
            on_column(column.name)
    smooth: dict[str, float] = {}
    if smoothness:
        smooth = _smoothness(model, spec, env, base, cache, settings)
        write_json(cache_path, {"checkpoint_step": step, "entries": cache})
    return RunMeasurement(spec.model.name, int(spec.seed), str(run_dir), results, smooth)


def _smoothness(model, spec, env, base, cache: dict[str, Any], settings: RobustnessSettings) -> dict[str, float]:
    """`hidden_state_smoothness` on the run's first unperturbed test games (cached like a column),
    as the env records them (`EnvDefinition.record_model`)."""
    if env.record_model is None:
        raise RobustnessError(f"Smoothness is measured on recorded games, and env '{env.name}' does not record "
                              "its games (EnvDefinition.record_model). Leave out --smoothness for it.")
    key = json.dumps({"smoothness": [settings.smoothness_games, settings.smoothness_steps,
                                     settings.lyapunov_burn_in], "seed": int(spec.eval.seed)})
    if key not in cache:
        _, trajectory = env.record_model(model, base, num_games=settings.smoothness_games, seed=int(spec.eval.seed))
        observations = trajectory.observations[:, :settings.smoothness_steps]
        burn_in = min(settings.lyapunov_burn_in, observations.shape[1] // 2)  # games shorter than configured
        cache[key] = hidden_state_smoothness(model, observations, burn_in=burn_in)
    return cache[key]


def measure_runs(run_dirs: Iterable[str | Path], columns: Sequence[Perturbation], *, settings: RobustnessSettings,
                 smoothness: bool = True, progress: bool = True, games: str = "test") -> list[RunMeasurement]:
    """`measure_run` for every run folder (on its ``games``), with one progress bar over (run, column)."""
    from tqdm.auto import tqdm

    run_dirs = [Path(d) for d in run_dirs]
    bar = tqdm(total=len(run_dirs) * len(columns), desc="robustness", unit="eval", disable=not progress)
    measurements = []
    try:
        for run_dir in run_dirs:
            bar.set_postfix_str(run_dir.name[-40:])
            measurements.append(measure_run(run_dir, columns, settings=settings, smoothness=smoothness,
                                            on_column=lambda _: bar.update(1), games=games))
    finally:
        bar.close()
    return measurements
