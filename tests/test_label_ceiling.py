"""The offline label-ceiling classifier (tnd.analysis.label_ceiling) and its script."""

import numpy as np
import pytest

from tnd.analysis.label_ceiling import history_windows, label_ceiling, pool_frames


def test_windows_hold_the_last_k_steps_of_their_own_episode_oldest_first():
    features = np.arange(7, dtype=np.float32)[:, None] * np.array([[1.0, 10.0]], np.float32)  # [7, 2]
    windows = history_windows(features, np.array([0, 3]), k=3)
    assert windows.shape == (7, 6)
    # step 4 (second step of the episode starting at 3): [3, 3, 4], the first step repeated
    np.testing.assert_array_equal(windows[4], [3, 30, 3, 30, 4, 40])
    np.testing.assert_array_equal(windows[2], [0, 0, 1, 10, 2, 20])
    np.testing.assert_array_equal(windows[3], [3, 30] * 3)  # a new episode never sees the previous one
    np.testing.assert_array_equal(history_windows(features, np.array([0]), k=1), features)
    with pytest.raises(ValueError, match="k must be >= 1"):
        history_windows(features, np.array([0]), k=0)


def _delayed_labels(seed=0, games=8, length=400):
    """Labels that copy the previous step's (discretised) feature: invisible at k = 1,
    readable at k = 2."""
    rng = np.random.default_rng(seed)
    x = rng.random((games * length, 1)).astype(np.float32)
    starts = np.arange(games) * length
    labels = np.zeros(games * length, np.int64)
    previous = np.roll(x[:, 0], 1)
    previous[starts] = x[starts, 0]
    labels[:] = np.digitize(previous, [1 / 3, 2 / 3])
    return x, labels, starts


def test_the_ceiling_sees_what_the_window_shows_and_nothing_more():
    x, labels, starts = _delayed_labels()
    blind = label_ceiling(history_windows(x, starts, 1), labels, starts, max_iter=50)
    seeing = label_ceiling(history_windows(x, starts, 2), labels, starts, max_iter=50)
    assert seeing.accuracy > 0.97
    assert blind.accuracy < 0.5  # three balanced labels, independent of the current step
    assert blind.test_games == 2 and blind.train_games == 6  # whole games held out
    assert blind.train_steps + blind.test_steps == len(labels)
    assert 0.25 < blind.majority < 0.45


def test_the_ceiling_needs_two_games_and_subsamples_training_steps():
    x, labels, starts = _delayed_labels(games=2, length=300)
    result = label_ceiling(history_windows(x, starts, 2), labels, starts, max_train_steps=100, max_iter=20)
    assert result.train_steps == 100 and result.test_steps == 300
    with pytest.raises(ValueError, match="at least 2 games"):
        label_ceiling(x, labels, np.array([0]))


def test_pooled_frames_are_block_means():
    frames = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    pooled = pool_frames(frames, 2)
    assert pooled.shape == (2, 2, 3)
    assert pooled[0, 0, 0] == np.mean(frames[0, :2, :2])
    with pytest.raises(ValueError, match="not a multiple"):
        pool_frames(frames, 4)


def test_the_script_refuses_unknown_modes_and_experts_in_one_line(capsys):
    from experiments import label_ceiling as script

    for argv, needle in ((["--modes", "rgb"], "--modes: unknown"), (["--experts", "oracle"], "--experts: unknown"),
                         (["--k", "0"], "--k: window lengths must be >= 1"), (["--k", "a"], "comma-separated integers")):
        with pytest.raises(SystemExit):
            script.main(argv)
        assert needle in capsys.readouterr().err


def test_the_script_renders_one_row_per_expert_and_mode():
    from experiments.label_ceiling import render

    rows = [{"expert": e, "obs_mode": "objects", "k": k, "accuracy": 0.5 + k / 100, "majority": 0.4,
             "train_games": 9, "test_games": 3, "train_steps": 10, "test_steps": 5}
            for e in ("lookahead", "rule") for k in (1, 4)]
    markdown, table_csv = render(rows, ["data.num_episodes=12"])
    assert "| rule | objects | 0.400 | 0.510 | 0.540 |" in markdown
    assert "data.num_episodes=12" in markdown
    assert table_csv.count("\n") == 5
