"""How well can the expert's labels be predicted from what a student sees?

Behavior cloning cannot beat the best classifier of the expert's labels given the student's
observations: a label that depends on something the observations do not show is noise to
the student. `label_ceiling` fits an offline classifier (scikit-learn's histogram gradient
boosting) on windows of the last k observations (`history_windows`) of some games and
scores its accuracy on the steps of other games: an estimate of that ceiling for a
student that remembers k steps.

    windows = history_windows(demos.observations.reshape(demos.num_steps, -1), demos.episode_starts, k=4)
    result = label_ceiling(windows, demos.actions, demos.episode_starts)   # CeilingResult
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class CeilingResult:
    """Held-out label accuracy of the offline classifier, and what it is compared with.

    ``accuracy``: share of held-out steps whose label the classifier predicts; ``majority``:
    the same for always predicting the training games' most frequent label; ``train_steps``
    / ``test_steps``: steps fitted on / scored; ``train_games`` / ``test_games``: games.
    """

    accuracy: float
    majority: float
    train_steps: int
    test_steps: int
    train_games: int
    test_games: int


def history_windows(features: np.ndarray, episode_starts: np.ndarray, k: int) -> np.ndarray:
    """``features [S, F]`` of consecutive episodes -> ``[S, k F]``: at each step the last k
    steps of its own episode, oldest first; before an episode's first step its first step
    is repeated (as the env's ``obs_history`` fills it)."""
    if k < 1:
        raise ValueError(f"k must be >= 1 (steps per window), got {k}.")
    features = np.asarray(features)
    steps = features.shape[0]
    index = np.arange(steps)
    first = np.repeat(np.asarray(episode_starts, np.int64), np.diff(np.append(episode_starts, steps)))
    columns = [features[np.maximum(index - lag, first)] for lag in range(k - 1, -1, -1)]
    return np.concatenate(columns, axis=1)


def label_ceiling(
    windows: np.ndarray, labels: np.ndarray, episode_starts: np.ndarray, *, test_fraction: float = 0.25,
    max_train_steps: int = 60_000, seed: int = 0, max_iter: int = 200,
) -> CeilingResult:
    """Fits the classifier on the first games' steps and scores it on the last
    ``test_fraction`` of the games (whole games held out: steps of one game are correlated).

    ``windows [S, D]``, ``labels [S]`` int, ``episode_starts [E]`` (E >= 2). At most
    ``max_train_steps`` training steps are used (an even subsample, ``seed``).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    starts = np.asarray(episode_starts, np.int64)
    if len(starts) < 2:
        raise ValueError("label_ceiling needs at least 2 games (some to fit, some held out).")
    test_games = min(max(1, int(round(len(starts) * test_fraction))), len(starts) - 1)
    split = int(starts[len(starts) - test_games])
    x_train, y_train = windows[:split], np.asarray(labels)[:split]
    x_test, y_test = windows[split:], np.asarray(labels)[split:]
    if len(y_train) > max_train_steps:
        keep = np.sort(np.random.default_rng(seed).choice(len(y_train), max_train_steps, replace=False))
        x_train, y_train = x_train[keep], y_train[keep]
    classifier = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
    classifier.fit(x_train, y_train)
    majority_label = np.bincount(y_train).argmax()
    return CeilingResult(
        accuracy=float(np.mean(classifier.predict(x_test) == y_test)),
        majority=float(np.mean(y_test == majority_label)),
        train_steps=int(len(y_train)), test_steps=int(len(y_test)),
        train_games=len(starts) - test_games, test_games=test_games,
    )


def pool_frames(frames: np.ndarray, factor: int) -> np.ndarray:
    """``[S, H, W]`` frames -> ``[S, H / factor, W / factor]`` block means (a classifier's
    features from pixels; H and W must be multiples of ``factor``)."""
    s, h, w = frames.shape
    if h % factor or w % factor:
        raise ValueError(f"frame size {h}x{w} is not a multiple of the pooling factor {factor}.")
    return frames.reshape(s, h // factor, factor, w // factor, factor).mean(axis=(2, 4))
