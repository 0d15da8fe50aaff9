"""Training windows: gather, reset masks, errors, deterministic and checkpointable sampling."""

import numpy as np
import pytest

from tnd.envs.demonstrations import Demonstrations
from tnd.data.windows import WindowError, WindowSampler, gather_windows, make_windows


def demos(lengths=(5, 3, 6), num_actions=3):
    steps = int(sum(lengths))
    obs = np.arange(steps, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    actions = (np.arange(steps) % num_actions).astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    z = np.zeros(steps)
    return Demonstrations(obs, actions, actions, z.astype(np.float32), z.astype(bool), z.astype(bool),
                          starts, np.arange(len(lengths)), {})


def test_gather_gives_consecutive_steps_and_resets_at_episode_starts():
    w = make_windows(demos(), 4, num_actions=3)
    assert w.num_windows == 14 - 4 + 1
    x, labels, resets = gather_windows(w.arrays(), np.array([0, 3, 10], np.int32), 4)
    assert x.shape == (3, 4, 2)
    np.testing.assert_array_equal(np.asarray(x[:, :, 0]), [[0, 1, 2, 3], [3, 4, 5, 6], [10, 11, 12, 13]])
    np.testing.assert_array_equal(np.asarray(labels[1]), np.arange(3, 7) % 3)
    # episodes start at 0, 5, 8; every window also starts from a fresh carry (t = 0)
    np.testing.assert_array_equal(np.asarray(resets), [[1, 0, 0, 0], [1, 0, 1, 0], [1, 0, 0, 0]])


def test_window_longer_than_every_episode_is_one_clear_error():
    with pytest.raises(WindowError, match="longer than every episode.*longest: 6"):
        make_windows(demos(), 7, num_actions=3)
    with pytest.raises(WindowError, match="must be positive"):
        make_windows(demos(), 0, num_actions=3)



def test_capacity_pads_the_arrays_and_draws_the_same_windows():
    """Room for more steps (DAgger's growing data): one shape for every size up to the capacity,
    the same batches as the unpadded arrays, and never a window in the padding."""
    plain = make_windows(demos(), 3, num_actions=3)
    roomy = make_windows(demos(), 3, num_actions=3, capacity=40)
    larger = make_windows(demos((5, 3, 6, 9)), 3, num_actions=3, capacity=40)
    assert roomy.observations.shape == larger.observations.shape == (40, 2)
    assert roomy.starts.shape == larger.starts.shape == (38,)
    assert (roomy.num_windows, larger.num_windows) == (plain.num_windows, 23 - 3 + 1)
    sampler = WindowSampler(seed=3, batch_size=64)
    for step in range(5):
        starts = np.asarray(sampler.indices(roomy, step))
        np.testing.assert_array_equal(starts, np.asarray(sampler.indices(plain, step)))
        assert starts.max() + 3 <= 14  # inside the data
        for a, b in zip(gather_windows(roomy.arrays(), starts, 3), gather_windows(plain.arrays(), starts, 3)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    balanced = make_windows(demos(), 3, num_actions=3, class_balance="sample", capacity=40)
    assert np.asarray(balanced.start_probs)[plain.num_windows:].sum() == 0
    assert np.asarray(sampler.indices(balanced, 0)).max() < plain.num_windows
    with pytest.raises(WindowError, match="capacity=10 is below the dataset's 14 steps"):
        make_windows(demos(), 3, num_actions=3, capacity=10)

def test_sampling_is_a_pure_function_of_seed_and_step_and_checkpointable():
    w = make_windows(demos(), 3, num_actions=3)
    a = WindowSampler(seed=1, batch_size=5)
    b = WindowSampler(seed=1, batch_size=5)
    np.testing.assert_array_equal(np.asarray(a.indices(w, 7)), np.asarray(b.indices(w, 7)))
    assert not np.array_equal(np.asarray(a.indices(w, 7)), np.asarray(a.indices(w, 8)))
    assert not np.array_equal(np.asarray(a.indices(w, 7)), np.asarray(WindowSampler(2, 5).indices(w, 7)))
    a.position = 42
    b.load_state_dict(a.state_dict())
    assert b.position == 42
    with pytest.raises(WindowError, match="seed"):
        WindowSampler(seed=3, batch_size=5).load_state_dict(a.state_dict())


def test_class_balanced_sampling_favours_windows_with_rare_labels():
    steps = 400
    actions = np.zeros(steps, np.int32)
    actions[200:220] = 1  # a rare class in one stretch
    d = demos((steps,))
    d = Demonstrations(d.observations, actions, actions, d.rewards, d.catches, d.misses, d.episode_starts, d.seeds, {})
    uniform = make_windows(d, 10, num_actions=3)
    balanced = make_windows(d, 10, num_actions=3, class_balance="sample")
    sampler = WindowSampler(seed=0, batch_size=2000)

    def rare_fraction(w):
        starts = np.asarray(sampler.indices(w, 0))
        _, labels, _ = gather_windows(w.arrays(), starts, 10)
        return float((np.asarray(labels) == 1).mean())

    assert rare_fraction(balanced) > 3 * rare_fraction(uniform)
    with pytest.raises(WindowError, match="class_balance"):
        make_windows(d, 10, num_actions=3, class_balance="oversample")
