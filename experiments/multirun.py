"""How ``tnd-table`` runs a sweep's jobs: Hydra multiruns of the trainer command, N at a time.

`compose_sweep` asks the trainer for the experiment's composed config (``--cfg all``, nothing
trained); `multirun` is the `tnd.app.sweep.run_sweep` launcher that starts one multirun per
group of jobs; `launcher_overrides` picks the local launcher (one job per CPU core, one on a
GPU machine) unless the command line names one.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

import yaml

from tnd.app import sweep
from tnd.app.sweep import SweepError
from tnd.run_folder import override_key


@dataclasses.dataclass(frozen=True)
class Composed:
    """What the trainer's composed config says about the sweep (no training)."""

    params: dict  # hydra.sweeper.params
    env: str | None  # env.name (None: the trainer has no env group)
    dagger_rounds: int = 0  # dagger.rounds (jobs that do not sweep it)
    compilation_cache: str | None = None  # the jobs' persistent compilation cache (tnd-train's compilation_cache)


def compose_sweep(train_command: list[str], experiment: str, task: list[str], hydra_: list[str]) -> Composed:
    """``hydra.sweeper.params``, ``env.name``, ``dagger.rounds`` and ``compilation_cache`` of the
    trainer's config with these overrides."""
    cmd = [*train_command, f"experiment={experiment}", *sweep.fixed_overrides(task), *hydra_, "--cfg", "all"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SweepError(
            f"Composing the sweep failed ({shlex.join(cmd)}):\n{(proc.stderr or proc.stdout).strip()[-3000:]}"
        )
    try:
        cfg = yaml.safe_load(proc.stdout) or {}
        params = ((cfg.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
        env = (cfg.get("env") or {}).get("name")
        dagger_rounds = int((cfg.get("dagger") or {}).get("rounds") or 0)
        cache = cfg.get("compilation_cache")
    except (yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        raise SweepError(f"Could not read the config printed by {shlex.join(cmd)}: {exc}") from exc
    return Composed(dict(params), env, dagger_rounds, None if cache is None else str(cache))


def multirun(train_command: list[str], hydra_overrides: list[str], sweep_dir: Path,
             compilation_cache: str | None = None) -> sweep.Launcher:
    """A launcher running each group as ``<train command> -m <group> <hydra overrides>``, its jobs
    placed in ``<sweep_dir>/<override_dirname>`` of the swept keys only.

    ``compilation_cache``: a folder for JAX's persistent compilation cache, passed to the jobs
    as ``JAX_COMPILATION_CACHE_DIR`` (unless that is set already): a launcher's worker processes
    are not the command itself, which turns the cache on only for its own process."""
    if "'" in str(sweep_dir):
        raise SweepError(f"The sweep folder '{sweep_dir}' contains a quote; pick a --sweep-dir without one.")
    env = None
    if compilation_cache and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(Path(compilation_cache).expanduser().absolute())}

    def launch(group: sweep.LaunchGroup) -> int:
        excluded = [k for k in dict.fromkeys(override_key(o) for o in group.overrides) if k not in group.folder_keys]
        placement = [
            f"hydra.sweep.dir='{sweep_dir}'",
            "hydra.sweep.subdir=${hydra.job.override_dirname}",
            "hydra.job.config.override_dirname.exclude_keys=[" + ",".join(f"'{k}'" for k in excluded) + "]",
        ]
        cmd = [*train_command, "-m", *group.overrides, *hydra_overrides, *placement]
        print("[tnd-table] $ " + shlex.join(cmd), flush=True)
        return _call(cmd, env=env)

    return launch


def _call(cmd: list[str], grace_seconds: float = 60.0, env: dict[str, str] | None = None) -> int:
    """Runs ``cmd`` (in ``env``, default this process's environment); on Ctrl-C (which the job
    receives too) waits for it to stop on its own, so it can print its line and leave a
    resumable folder, before re-raising."""
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def default_jobs() -> int:
    """Jobs at a time by default: one per CPU core (every job's XLA uses the cores it gets, as
    ``pytest -n auto`` does), but one where JAX has a GPU plugin (one process owns the GPU;
    stack seeds instead, ``--stack-seeds``)."""
    import importlib.util
    import os

    if any(importlib.util.find_spec(plugin) for plugin in GPU_PLUGINS):
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


GPU_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin")


def launcher_overrides(hydra_: Sequence[str], jobs: int | None) -> tuple[list[str], str]:
    """The Hydra overrides that run ``jobs`` at a time (the local joblib launcher), unless a
    launcher is named; and the line that says how the jobs run."""
    if any(o.partition("=")[0] == "hydra/launcher" for o in hydra_):
        return [], "jobs run by the launcher named on the command line"
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise SweepError(f"--jobs must be at least 1, got {jobs}.")
    if jobs == 1:
        return [], "1 job at a time (--jobs N runs N at a time)"
    return (["hydra/launcher=local_parallel", f"hydra.launcher.n_jobs={jobs}"],
            f"{jobs} jobs at a time, one per CPU core (--jobs 1 runs one at a time)")
