"""Perturbed single-player Pong: each perturbation is an env option with exactly its stated effect."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tnd.envs.pong import PongConfig, PongConfigError, SinglePlayerPong, env_for, to_params
from tnd.envs.pong.perturb import PerturbedPong

STEPS = 400


def play(config: PongConfig, actions: np.ndarray, seed: int = 0):
    """Plays ``actions`` on ``env_for(config)``: (observations [T+1, 5], game observations [T+1, 5], game
    states [T]), the observations from the reset's on."""
    env, params = env_for(config)
    game, game_params = SinglePlayerPong(), to_params(config)
    key = jax.random.key(seed)
    obs, state = env.reset_env(key, params)

    def body(carry, inputs):
        state = carry
        k, a = inputs
        obs, state, _, _, _ = env.step_env(k, state, a, params)
        inner = state.game if isinstance(env, PerturbedPong) else state
        return state, (obs, game.get_obs(inner, game_params), inner)

    keys = jax.random.split(jax.random.key(seed + 1), len(actions))
    _, (seen, true, states) = jax.lax.scan(body, state, (keys, jnp.asarray(actions, jnp.int32)))
    first = np.asarray(game.get_obs(state.game if isinstance(env, PerturbedPong) else state, game_params))[None]
    return np.concatenate([np.asarray(obs)[None], seen]), np.concatenate([first, true]), states


def chase_actions(steps: int = STEPS, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3, steps)


def test_no_perturbation_is_the_plain_game_and_keeps_dataset_addresses():
    config = PongConfig()
    assert type(env_for(config)[0]) is SinglePlayerPong
    assert not {"obs_noise", "action_delay", "occlusion_steps"} & set(config.to_dict())
    assert "obs_noise" in PongConfig(obs_noise=0.01).to_dict()


def test_observation_noise_has_the_stated_sigma():
    sigma = 0.03
    seen, true, _ = play(PongConfig(obs_noise=sigma), chase_actions(4000))
    in_play = true[:, 4] == 0
    errors = np.concatenate([(seen - true)[in_play, :2].ravel(), (seen - true)[:, 2]])
    assert errors.std() == pytest.approx(sigma, rel=0.05) and abs(errors.mean()) < 3 * sigma / np.sqrt(errors.size)
    np.testing.assert_array_equal(seen[:, 3:], true[:, 3:])  # opponent slot and no-ball flag are exact
    np.testing.assert_array_equal(seen[~in_play, :2], true[~in_play, :2])  # no ball: nothing to perturb


@pytest.mark.parametrize("k", [1, 4])
def test_occlusion_hides_the_ball_for_exactly_k_steps(k):
    seen, true, _ = play(PongConfig(occlusion_steps=k, occlusion_rate=1.0), np.full(STEPS, 1))
    in_play = true[:, 4] == 0
    hidden = in_play & np.any(seen[:, :2] != true[:, :2], axis=1)
    runs, length, run_start = [], 0, 0
    for t, h in enumerate(hidden):
        if h:
            run_start = t if length == 0 else run_start
            length += 1
            np.testing.assert_array_equal(seen[t, :2], true[run_start - 1, :2])  # held at the last seen place
        elif length:
            runs.append((length, bool(in_play[t])))
            length = 0
    complete = [n for n, ended_in_play in runs if ended_in_play]
    assert complete and set(complete) == {k}  # a run cut short only by the end of a round
    assert all(n <= k for n, _ in runs)
    np.testing.assert_array_equal(seen[:, 2:], true[:, 2:])  # the paddle and the flag stay visible


@pytest.mark.parametrize("delay", [1, 3])
def test_action_delay_shifts_actions_by_that_many_steps(delay):
    actions = chase_actions()
    _, _, delayed = play(PongConfig(action_delay=delay), actions)
    _, _, shifted = play(PongConfig(), np.concatenate([np.zeros(delay, int), actions[:-delay]]))
    np.testing.assert_array_equal(np.asarray(delayed.paddle_y), np.asarray(shifted.paddle_y))
    np.testing.assert_array_equal(np.asarray(delayed.ball_x), np.asarray(shifted.ball_x))


def test_one_program_plays_every_perturbation():
    """The amounts are traced params: configs that differ only in them share one env (one compile)."""
    envs = {env_for(PongConfig(**o))[0] for o in ({"obs_noise": 0.1}, {"action_delay": 1}, {"occlusion_steps": 16},
                                                  {"repeat_action_probability": 0.1, "ball_speed": 0.15})}
    assert len(envs) == 1


def test_sticky_actions_repeat_the_executed_action_at_the_stated_rate():
    actions = np.tile([1, 2], 2000)  # alternating: every repeat is visible in the paddle's velocity
    env, params = env_for(PongConfig(repeat_action_probability=0.25))
    _, state = env.reset_env(jax.random.key(0), params)
    executed = []
    for t, a in enumerate(actions[:800]):
        _, state, *_ = env.step_env(jax.random.key(t), state, jnp.int32(a), params)
        executed.append(int(state.executed))
    # alternating choices: a repeat shows unless the previous step was itself a repeat, so the
    # share of executed actions that differ from the chosen one is m = p (1 - m) = p / (1 + p)
    mismatched = np.mean(np.asarray(executed) != actions[:800])
    assert mismatched == pytest.approx(0.25 / 1.25, abs=0.05)


@pytest.mark.parametrize("option, value", [
    ("obs_noise", -0.1), ("obs_noise", 2.0), ("action_delay", -1), ("repeat_action_probability", 1.0),
    ("occlusion_steps", -2), ("occlusion_rate", 0.0),
])
def test_out_of_range_perturbations_are_one_readable_error(option, value):
    with pytest.raises(PongConfigError, match=option) as info:
        PongConfig(**{option: value})
    assert "\n" not in str(info.value)
