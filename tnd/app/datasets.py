"""Expert datasets of an experiment: the cache address of a spec's data, loaded or collected.

The cache is addressed by the env, its config, the episode count, epsilon, seed and expert
(`dataset_config`), so every run with the same data settings shares one dataset; how it is
collected (``num_envs``, ``num_workers``) is not part of the address.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tnd.app.spec import check_positive
from tnd.data.storage import dataset_path, load_demonstrations, load_or_collect
from tnd.data.windows import label_frequencies
from tnd.envs import EnvDefinition, get_env
from tnd.training.config import DataSpec, EnvSpec, check_seed
from tnd.workers import check_num_workers


def dataset_config(data: DataSpec, env: EnvDefinition, env_config) -> dict[str, Any]:
    """The dict that addresses the dataset in the cache (`tnd.data.storage.dataset_path`)."""
    return {
        "env": env.name, "env_config": env.config_dict(env_config),
        "num_episodes": int(data.num_episodes), "epsilon": float(data.epsilon), "seed": int(data.seed),
        **env.expert_fields(),
    }


def load_dataset(data: DataSpec, env: EnvDefinition, env_config, *, progress: bool = True):
    """Loads ``data.path`` or the cached dataset of this config (collecting and storing it).

    The dataset's metadata must match the env config, epsilon and seed, and its labels the
    env's actions (`DatasetError`).
    """

    expected = env.expected_metadata(env_config, epsilon=data.epsilon, seed=data.seed)
    num_actions = env.num_actions(env_config)
    if data.path:
        return load_demonstrations(Path(data.path), num_actions=num_actions, expected_metadata=expected)

    def collect():
        return env.collect(
            env_config, num_episodes=int(data.num_episodes), seed=int(data.seed),
            epsilon=float(data.epsilon), num_envs=int(data.num_envs), progress=progress,
            num_workers=check_num_workers(data.num_workers, "data.num_workers"),
        )

    return load_or_collect(
        Path(data.root), dataset_config(data, env, env_config), collect,
        num_actions=num_actions, expected_metadata=expected, progress=progress,
    )


def collect_dataset(env_spec: EnvSpec, data: DataSpec, *, progress: bool = True) -> dict[str, Any]:
    """What tnd-collect does: load or collect the dataset; returns where and how big."""

    check_positive("data.num_episodes", data.num_episodes)
    check_positive("data.num_envs", data.num_envs)
    check_num_workers(data.num_workers, "data.num_workers")
    check_seed("data.seed", data.seed)
    env = get_env(env_spec.name)
    env_config = env.make_config(env_spec.options)
    path = Path(data.path) if data.path else dataset_path(Path(data.root), dataset_config(data, env, env_config))
    existed = Path(path).exists()
    demos = load_dataset(data, env, env_config, progress=progress)
    return {
        "path": str(path), "reused": existed, "env": env.name, "episodes": demos.num_episodes,
        "expert": demos.metadata.get("expert_summary"),
        "steps": demos.num_steps, "obs_shape": list(demos.obs_shape),
        "label_frequencies": [float(f) for f in label_frequencies(demos.actions, env.num_actions(env_config))],
    }
