"""Expert collection on every core: the same data as a serial collection, and a setting that
changes neither a spec's `config_hash` nor its dataset's address."""

import dataclasses

import numpy as np
import pytest

from tnd.app.datasets import collect_dataset, dataset_config
from tnd.app.experiment import config_hash, validate_sizes
from tnd.app.spec import load_spec
from tnd.envs import get_env
from tnd.envs.atari_pong import AtariPongConfig, collect_demonstrations
from tnd.training.config import DataSpec, EnvSpec, ExperimentSpec
from tnd.workers import WorkerCountError


def test_parallel_collection_equals_serial():
    config = AtariPongConfig(max_steps=100)
    kwargs = dict(num_episodes=4, seed=3, epsilon=0.2, num_envs=8, progress=False)
    serial = collect_demonstrations(config, num_workers=1, **kwargs)
    parallel = collect_demonstrations(config, num_workers=2, **kwargs)
    for field in dataclasses.fields(serial):
        a, b = getattr(serial, field.name), getattr(parallel, field.name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape, field.name
            np.testing.assert_array_equal(a, b, err_msg=field.name)
        else:
            assert a == b, field.name  # metadata, expert summary included
    assert serial.num_episodes == 4 and (serial.actions != serial.taken_actions).any()


def test_a_negative_worker_count_is_one_line(tmp_path):
    data = DataSpec(num_episodes=2, root=str(tmp_path), num_workers=-1)
    with pytest.raises(WorkerCountError, match=r"^data.num_workers must be 0 .* got -1\.$"):
        collect_dataset(EnvSpec("atari_pong", {"max_steps": 10}), data, progress=False)
    with pytest.raises(WorkerCountError, match="data.num_workers"):
        validate_sizes(dataclasses.replace(ExperimentSpec(), data=data))
    with pytest.raises(WorkerCountError, match="num_workers"):
        collect_demonstrations(AtariPongConfig(max_steps=10), num_episodes=2, seed=0, num_workers=-1, progress=False)
    assert list(tmp_path.iterdir()) == []  # refused before anything was collected


# config_hash of these specs before num_workers existed: the setting must not change them
HASHES_BEFORE = {(): "0af3575a4470", ("env=atari_pong",): "944b4506d9a5"}


@pytest.mark.parametrize("overrides", list(HASHES_BEFORE))
def test_num_workers_changes_no_hash_and_no_dataset_address(overrides):
    spec = load_spec(list(overrides))
    assert spec.data.num_workers == 1  # conf/data/default.yaml: serial (docs/atari.md says why)
    assert config_hash(spec) == HASHES_BEFORE[overrides]
    every_core = dataclasses.replace(spec, data=dataclasses.replace(spec.data, num_workers=0))
    assert config_hash(every_core) == config_hash(spec)
    env = get_env(spec.env.name)
    env_config = env.make_config(spec.env.options)
    assert dataset_config(every_core.data, env, env_config) == dataset_config(spec.data, env, env_config)
    assert "num_workers" not in dataset_config(spec.data, env, env_config)
