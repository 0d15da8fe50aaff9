"""Parameter-budget sizing: every registered model lands within ±10% of a budget; an
impossible budget or an unknown model is one clear error."""

from __future__ import annotations

import pytest

from tnd.models import BudgetError, UnknownModelError, effective_param_count, model_names
from tnd.models.budget import build_for_budget, param_count_at, width_for_budget

OBS, ACTIONS = (4,), 3


@pytest.mark.parametrize("name", model_names())
def test_lands_within_ten_percent(name):
    budget = 20_000
    model, count = build_for_budget(name, budget, obs_shape=OBS, num_actions=ACTIONS)
    assert abs(count - budget) <= 0.10 * budget
    assert count == effective_param_count(model)


def test_budget_matches_abstract_count():
    width, count = width_for_budget("lstm", 50_000, obs_shape=OBS, num_actions=ACTIONS)
    assert param_count_at("lstm", width, obs_shape=OBS, num_actions=ACTIONS) == count
    # the nearest width: neither neighbour is closer
    for other in (width - 1, width + 1):
        assert abs(param_count_at("lstm", other, obs_shape=OBS, num_actions=ACTIONS) - 50_000) >= abs(count - 50_000)


def test_transformer_width_respects_heads():
    width, _ = width_for_budget("transformer", 30_000, obs_shape=OBS, num_actions=ACTIONS, num_heads=4)
    assert width % 8 == 0


@pytest.mark.parametrize("budget", [10, 1_000])
def test_impossible_budget_is_one_clear_error(budget):
    with pytest.raises(BudgetError, match="no hidden_size lands within ±10% of the budget"):
        build_for_budget("lstm", budget, obs_shape=OBS, num_actions=ACTIONS)


def test_unreachable_tolerance_is_an_error():
    # LSTM counts jump by ~8H+... per unit of width: a 0.01% tolerance cannot be met.
    with pytest.raises(BudgetError, match="nearest widths give"):
        build_for_budget("lstm", 20_001, obs_shape=OBS, num_actions=ACTIONS, tolerance=1e-4)


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownModelError, match="Valid models: .*cfc.*lstm"):
        build_for_budget("mamba", 20_000, obs_shape=OBS, num_actions=ACTIONS)


def test_width_and_budget_together_is_an_error():
    with pytest.raises(BudgetError, match="hidden_size"):
        build_for_budget("rnn", 20_000, obs_shape=OBS, num_actions=ACTIONS, hidden_size=5)
