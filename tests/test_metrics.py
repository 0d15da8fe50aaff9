"""The catch metrics follow docs/design.md's definitions exactly (`CatchTally`, both Pong games)."""

import math

import numpy as np

from tnd.envs.catch_tally import CatchTally
from tnd.evaluation.metrics import summarize


def _tally(**fields):
    base = dict(catches=[0], misses=[0], rounds=[0], catches_in_rounds=[0], points_won=[0], points_lost=[0], steps=[0])
    base.update(fields)
    return CatchTally(**{k: np.asarray(v) for k, v in base.items()})


def test_catch_rate_and_catches_per_round_are_pooled_over_games():
    # Game 1: rounds with 3 and 1 catches, then 2 catches in an unfinished round.
    # Game 2: one round with 0 catches.
    tally = _tally(
        catches=[6, 0], misses=[2, 1], rounds=[2, 1], catches_in_rounds=[4, 0],
        points_won=[0, 0], points_lost=[2, 1], steps=[100, 10],
    )
    s = summarize(tally)
    assert s["catch_rate"] == 6 / 9
    assert s["catches_per_round"] == 4 / 3  # (3 + 1 + 0) over three completed rounds
    assert s["score"] == -1.5 and s["points_lost"] == 1.5
    assert s["games"] == 2 and s["steps"] == 110


def test_no_events_gives_nan_not_a_division_error():
    s = summarize(_tally())
    assert math.isnan(s["catch_rate"]) and math.isnan(s["catches_per_round"])


def test_concatenate_keeps_every_game():
    a = _tally(catches=[1], rounds=[1], catches_in_rounds=[1])
    b = _tally(catches=[2], rounds=[1], catches_in_rounds=[2])
    both = CatchTally.concatenate([a, b])
    assert both.catches.tolist() == [1, 2]
    assert summarize(both)["catches_per_round"] == 1.5
