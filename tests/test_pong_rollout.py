"""Closed-loop evaluation of harness models on single-player Pong, inside one jitted call."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tiny_models import TinyRNN
from tnd.envs.catch_tally import CatchTally
from tnd.envs.pong import (
    NUM_ACTIONS, STAY, UP, PongConfig, SinglePlayerPong, evaluate_model, game_seeds, step_events, to_params,
)
from tnd.envs.rollout import Policy, rollout
from tnd.evaluation.metrics import summarize

CONFIG = PongConfig(max_steps=300, max_catches_per_round=3)
GAMES = 4


def _constant_model(action):
    """A TinyRNN whose head always prefers ``action``."""
    model = TinyRNN(rngs=nnx.Rngs(0))
    model.head.kernel[...] = jnp.zeros_like(model.head.kernel[...])
    model.head.bias[...] = jnp.zeros((NUM_ACTIONS,)).at[action].set(5.0)
    return model


def _check_sane(tally, games):
    assert isinstance(tally, CatchTally)
    for name in ("catches", "misses", "rounds", "catches_in_rounds", "points_won", "points_lost", "steps"):
        value = np.asarray(getattr(tally, name))
        assert value.shape == (games,) and np.all(value >= 0), name
    np.testing.assert_array_equal(tally.steps, CONFIG.max_steps)
    np.testing.assert_array_equal(tally.rounds, tally.misses + tally.points_won)
    np.testing.assert_array_equal(tally.points_lost, tally.misses)
    assert np.all(tally.catches_in_rounds <= tally.catches)
    assert np.all(tally.catches_in_rounds <= CONFIG.max_catches_per_round * tally.rounds)
    assert np.all(tally.catches + tally.misses > 0), "a 300-step game sees the ball reach the paddle"


def test_evaluate_tiny_model_runs_and_is_deterministic():
    model = TinyRNN(rngs=nnx.Rngs(1))
    tally = evaluate_model(model, CONFIG, num_games=GAMES, seed=0, progress=False)
    _check_sane(tally, GAMES)
    again = evaluate_model(model, CONFIG, num_games=GAMES, seed=0, progress=False, batch_size=GAMES // 2)
    for name in ("catches", "misses", "rounds", "catches_in_rounds"):
        np.testing.assert_array_equal(getattr(again, name), getattr(tally, name))
    summary = summarize(tally)
    assert summary["games"] == GAMES and summary["steps"] == GAMES * CONFIG.max_steps


@jax.jit
def _play_constant(action, seeds):
    def constant(carry, obs, _states, _keys):
        actions = jnp.full((obs.shape[0],), action, jnp.int32)
        return carry, actions, actions

    keys = jax.vmap(jax.random.key)(seeds)
    policy = Policy(lambda games: jnp.zeros(()), constant)
    counts, _ = rollout(SinglePlayerPong(), policy, keys, to_params(CONFIG), CONFIG.max_steps, events=step_events)
    return counts


def test_greedy_actions_come_from_the_model():
    """A model that always prefers one action plays exactly like that constant policy."""
    seeds = jnp.asarray(game_seeds(3, GAMES), jnp.int32)
    results = {}
    for action in (STAY, UP):
        tally = evaluate_model(_constant_model(action), CONFIG, num_games=GAMES, seed=3, progress=False)
        expected = _play_constant(jnp.int32(action), seeds)
        for name, value in expected.items():
            np.testing.assert_array_equal(getattr(tally, name), np.asarray(value), err_msg=name)
        _check_sane(tally, GAMES)
        results[action] = tally.catches
    assert not np.array_equal(results[STAY], results[UP])
