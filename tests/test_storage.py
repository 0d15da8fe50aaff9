"""Dataset storage: round trip, config addressing, errors, atomic writes."""

import json

import numpy as np
import pytest

from tnd.data import storage
from tnd.envs.demonstrations import Demonstrations
from tnd.data.storage import DatasetError, dataset_path, load_demonstrations, load_or_collect, save_demonstrations


def make_demos(obs_mode="objects", steps=12):
    rng = np.random.default_rng(0)
    shape = (5,) if obs_mode == "objects" else (6, 7)
    return Demonstrations(
        observations=rng.random((steps, *shape), dtype=np.float32),
        actions=rng.integers(0, 3, steps).astype(np.int32),
        taken_actions=rng.integers(0, 3, steps).astype(np.int32),
        rewards=rng.choice([-1.0, 0.0, 1.0], steps).astype(np.float32),
        catches=rng.random(steps) < 0.2,
        misses=rng.random(steps) < 0.1,
        episode_starts=np.array([0, 5], np.int64),
        seeds=np.array([3, 4], np.int64),
        metadata={"env": "ALE/Pong-v5", "obs_mode": obs_mode, "env_config": {"frame_size": (84, 84)}},
    )


@pytest.mark.parametrize("obs_mode", ["objects", "pixels"])
def test_round_trip(tmp_path, obs_mode):
    demos = make_demos(obs_mode)
    save_demonstrations(demos, tmp_path / "d")
    back = load_demonstrations(tmp_path / "d", num_actions=3, expected_metadata={"obs_mode": obs_mode})
    atol = 0.5 / 255 + 1e-6 if obs_mode == "pixels" else 0
    np.testing.assert_allclose(back.observations, demos.observations, atol=atol)
    assert back.observations.dtype == np.float32
    for name in ("actions", "taken_actions", "rewards", "catches", "misses", "episode_starts", "seeds"):
        np.testing.assert_array_equal(getattr(back, name), getattr(demos, name))
    assert back.metadata["env_config"] == {"frame_size": [84, 84]}


def test_mismatched_obs_mode(tmp_path):
    save_demonstrations(make_demos("objects"), tmp_path / "d")
    with pytest.raises(DatasetError, match="obs_mode='objects'.*obs_mode='pixels'"):
        load_demonstrations(tmp_path / "d", num_actions=3, expected_metadata={"obs_mode": "pixels"})


def test_missing_truncated_corrupt(tmp_path):
    with pytest.raises(DatasetError, match="No dataset"):
        load_demonstrations(tmp_path / "nothing", num_actions=3)
    path = tmp_path / "d"
    save_demonstrations(make_demos(), path)
    obs = path / "observations.npy"
    data = obs.read_bytes()
    obs.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="observations.npy"):
        load_demonstrations(path, num_actions=3)
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        load_demonstrations(path, num_actions=3, verify=False)
    save_demonstrations(make_demos(), path)  # overwriting repairs it
    load_demonstrations(path, num_actions=3)
    raw = bytearray((path / "actions.npy").read_bytes())
    raw[-1] ^= 1
    (path / "actions.npy").write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="checksum"):
        load_demonstrations(path, num_actions=3)


def test_interrupted_write_leaves_nothing_loadable(tmp_path, monkeypatch):
    path = tmp_path / "d"
    calls = {"n": 0}
    real_save = np.save

    def failing_save(file, array, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return real_save(file, array, **kw)

    monkeypatch.setattr(storage.np, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        save_demonstrations(make_demos(), path)
    assert not path.exists() and list(tmp_path.iterdir()) == []
    # a directory without the completion marker is refused
    monkeypatch.setattr(storage.np, "save", real_save)
    save_demonstrations(make_demos(), path)
    (path / storage.MARKER_FILE).unlink()
    with pytest.raises(DatasetError, match="incomplete"):
        load_demonstrations(path, num_actions=3)


def test_load_or_collect_reuses(tmp_path):
    config = {"env": {"obs_mode": "objects", "frame_size": (84, 84)}, "num_episodes": 2, "seed": 0}
    assert dataset_path(tmp_path, config) == dataset_path(tmp_path, json.loads(json.dumps(config)))
    assert dataset_path(tmp_path, config) != dataset_path(tmp_path, {**config, "seed": 1})
    calls = []

    def collect():
        calls.append(1)
        return make_demos()

    expected = {"obs_mode": "objects"}
    first = load_or_collect(tmp_path, config, collect, num_actions=3, expected_metadata=expected, progress=False)
    second = load_or_collect(tmp_path, config, collect, num_actions=3, expected_metadata=expected, progress=False)
    assert len(calls) == 1
    assert second.metadata["producing_config"]["seed"] == 0
    np.testing.assert_array_equal(first.actions, second.actions)
