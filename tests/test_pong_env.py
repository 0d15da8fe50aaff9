"""Single-player Pong physics, observations, actions and the gymnax-style interface."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tnd.envs.pong import (
    DOWN,
    OPPONENT_Y,
    STAY,
    UP,
    PongConfig,
    PongConfigError,
    SinglePlayerPong,
    obs_shape,
    to_params,
)

CONFIG = PongConfig(max_steps=400, serve_delay=3)
ENV = SinglePlayerPong(CONFIG)
PARAMS = ENV.default_params


_STEP = jax.jit(ENV.step_env)


def _random_rollout(num_games=64, steps=400, seed=0):
    """Random actions; returns (states before, actions, obs, states after, reward, info) stacked [T, G]."""
    return jax.device_get(_rollout_fn(num_games, steps)(jax.random.key(seed)))


@functools.lru_cache(maxsize=None)
def _rollout_fn(num_games, steps):
    @jax.jit
    def run(key):
        keys = jax.random.split(key, num_games)
        _, states = jax.vmap(ENV.reset_env, (0, None))(keys, PARAMS)

        def body(states, t):
            ks = jax.vmap(lambda k: jax.random.fold_in(k, t))(keys)
            actions = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, 1), (), 0, 3))(ks)
            obs, nxt, reward, done, info = jax.vmap(ENV.step_env, (0, 0, 0, None))(ks, states, actions, PARAMS)
            return nxt, (states, actions, obs, nxt, reward, info)

        _, out = jax.lax.scan(body, states, jnp.arange(steps))
        return out

    return run


@pytest.fixture(scope="module")
def rollout():
    return _random_rollout()


def _place(**fields):
    _, state = ENV.reset_env(jax.random.key(0), PARAMS)
    return state.replace(**{k: jnp.asarray(v, getattr(state, k).dtype) for k, v in fields.items()})


def test_ball_and_paddle_stay_in_the_court(rollout):
    before, _, obs, after, _, _ = rollout
    for s in (before, after):
        assert np.all((s.ball_x >= 0) & (s.ball_x <= 1)), "ball left the court in x"
        assert np.all((s.ball_y >= 0) & (s.ball_y <= 1)), "ball left the court in y"
        h = CONFIG.paddle_half_height
        assert np.all((s.paddle_y >= h - 1e-6) & (s.paddle_y <= 1 - h + 1e-6))


def test_wall_reflections_preserve_speed(rollout):
    before, _, _, after, _, info = rollout
    flying = (before.serve_timer == 0) & (after.serve_timer == 0) & ~info["catch"]
    flipped_y = flying & (np.sign(before.ball_vy) != np.sign(after.ball_vy))
    flipped_x = flying & (np.sign(before.ball_vx) != np.sign(after.ball_vx))
    assert flipped_y.sum() > 50 and flipped_x.sum() > 50, "rollout too short to see wall bounces"
    speed_before = np.hypot(before.ball_vx, before.ball_vy)[flying]
    speed_after = np.hypot(after.ball_vx, after.ball_vy)[flying]
    np.testing.assert_allclose(speed_after, speed_before, rtol=1e-6)
    # A bounce off a wall flips exactly one component: the other is unchanged.
    np.testing.assert_array_equal(after.ball_vx[flipped_y & ~flipped_x], before.ball_vx[flipped_y & ~flipped_x])


def test_a_miss_ends_the_round_and_hides_the_ball(rollout):
    before, _, obs, after, reward, info = rollout
    miss = info["miss"]
    assert miss.sum() > 10, "random play should miss"
    assert np.all(info["round_over"][miss])
    assert np.all(after.round_catches[miss] == 0)
    assert np.all(after.serve_timer[miss] == CONFIG.serve_delay)
    assert np.all(obs[miss][:, 4] == 1.0) and np.all(obs[miss][:, :2] == 0.0)
    assert np.all(reward[miss] == -1.0) and np.all(reward[info["catch"]] == 1.0)
    # The round's catch count is reported at its end, and only catches raise it.
    t, g = np.nonzero(miss)
    np.testing.assert_array_equal(info["round_catches"][t, g], before.round_catches[t, g])


def test_ball_is_served_again_after_the_delay(rollout):
    _, _, obs, after, _, info = rollout
    t, g = np.nonzero(info["miss"][:-CONFIG.serve_delay])
    flags = np.stack([obs[t + k, g, 4] for k in range(CONFIG.serve_delay + 1)], axis=1)
    np.testing.assert_array_equal(flags[:, :CONFIG.serve_delay], 1.0)
    np.testing.assert_array_equal(flags[:, CONFIG.serve_delay], 0.0)
    served = after.ball_vx[t + CONFIG.serve_delay, g]
    assert np.all(served < 0), "serves head to the far wall"


def test_observations_follow_the_objects_contract(rollout):
    _, _, obs, after, _, _ = rollout
    assert obs_shape(CONFIG) == (5,) and obs.shape[-1] == 5 and obs.dtype == np.float32
    assert np.all((obs >= 0) & (obs <= 1))
    np.testing.assert_array_equal(obs[..., 3], OPPONENT_Y)
    assert set(np.unique(obs[..., 4])) == {0.0, 1.0}
    in_play = obs[..., 4] == 0
    np.testing.assert_array_equal(obs[..., 0][in_play], after.ball_x[in_play])
    np.testing.assert_array_equal(obs[..., 2], after.paddle_y)


def test_catch_returns_the_ball_with_angle_and_speed_from_the_hit_point():
    def hit(offset):
        reach = CONFIG.paddle_half_height + CONFIG.ball_radius
        state = _place(ball_x=0.95, ball_y=0.5 + offset * reach, ball_vx=0.1, ball_vy=0.0, paddle_y=0.5, paddle_v=0.0)
        _, nxt, reward, _, info = _STEP(jax.random.key(1), state, STAY, PARAMS)
        return nxt, reward, info

    centre, r, info = hit(0.0)
    assert bool(info["catch"]) and not bool(info["miss"]) and float(r) == 1.0
    assert float(centre.ball_vx) < 0 and abs(float(centre.ball_vy)) < 1e-6
    assert int(centre.round_catches) == 1
    low, _, _ = hit(0.8)  # ball below the paddle centre: sent downward, faster
    assert float(low.ball_vy) > 0
    assert np.hypot(low.ball_vx, low.ball_vy) > np.hypot(centre.ball_vx, centre.ball_vy) + 1e-3
    high, _, _ = hit(-0.8)
    assert float(high.ball_vy) < 0
    missed, r, info = hit(1.5)
    assert bool(info["miss"]) and not bool(info["catch"]) and float(r) == -1.0
    assert int(missed.serve_timer) == CONFIG.serve_delay


def test_catch_cap_ends_the_round_as_won():
    state = _place(ball_x=0.95, ball_y=0.5, ball_vx=0.1, ball_vy=0.0, paddle_y=0.5, round_catches=CONFIG.max_catches_per_round - 1)
    _, nxt, _, _, info = _STEP(jax.random.key(1), state, STAY, PARAMS)
    assert bool(info["catch"]) and bool(info["capped"]) and bool(info["round_over"])
    assert int(info["round_catches"]) == CONFIG.max_catches_per_round and int(nxt.round_catches) == 0
    assert int(info["max_catches_per_round"]) == CONFIG.max_catches_per_round
    assert int(info["max_steps"]) == CONFIG.max_steps


def test_up_decreases_y_down_increases_it_and_the_paddle_coasts():
    state = _place(paddle_y=0.5, paddle_v=0.0)

    def hold(state, action, n):
        for _ in range(n):
            _, state, _, _, _ = _STEP(jax.random.key(0), state, action, PARAMS)
        return state

    assert float(hold(state, UP, 4).paddle_y) < 0.5 - 0.05
    assert float(hold(state, DOWN, 4).paddle_y) > 0.5 + 0.05
    assert float(hold(state, STAY, 4).paddle_y) == 0.5
    moving = hold(state, DOWN, 4)
    coasted = hold(moving, STAY, 3)
    assert float(coasted.paddle_y) > float(moving.paddle_y) + 0.02, "momentum: the paddle keeps moving"
    assert float(hold(state, UP, 60).paddle_y) == pytest.approx(CONFIG.paddle_half_height)


def test_determinism_per_key_and_new_serves_per_key(rollout):
    a, b, c = rollout, _random_rollout(seed=0), _random_rollout(seed=1)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])
    first_serves = a[0].ball_y[0]
    assert len(np.unique(first_serves)) == len(first_serves), "each game draws its own serve"


def test_jit_vmap_scan_equals_python_loop_of_single_steps():
    config = PongConfig(max_steps=25, serve_delay=2)  # short: the auto-reset happens in the loop
    env = SinglePlayerPong(config)
    params = env.default_params
    games, steps = 3, 60
    keys = jax.random.split(jax.random.key(7), games)
    actions = jax.random.randint(jax.random.key(8), (steps, games), 0, 3)
    step_keys = jax.vmap(lambda t: jax.vmap(lambda k: jax.random.fold_in(k, t))(keys))(jnp.arange(steps))

    @jax.jit
    def scanned():
        obs, states = jax.vmap(env.reset, (0, None))(keys, params)

        def body(states, inputs):
            k, a = inputs
            obs, states, reward, done, info = jax.vmap(env.step, (0, 0, 0, None))(k, states, a, params)
            return states, (obs, reward, done, info["catch"])

        return jax.lax.scan(body, states, (step_keys, actions))[1]

    obs_s, rew_s, done_s, catch_s = jax.device_get(scanned())
    for g in range(games):
        _, state = env.reset(keys[g])  # params=None: the env's default params
        for t in range(steps):
            obs, state, reward, done, info = env.step(step_keys[t, g], state, actions[t, g])
            np.testing.assert_allclose(obs, obs_s[t, g], atol=1e-6)
            assert float(reward) == rew_s[t, g] and bool(done) == done_s[t, g] and bool(info["catch"]) == catch_s[t, g]
    assert done_s[config.max_steps - 1].all() and done_s.sum() == games * (steps // config.max_steps)


def test_gymnax_interface():
    env = SinglePlayerPong()
    assert env.num_actions == 3 and env.action_space().n == 3 and env.name
    assert env.observation_space().shape == (5,)
    obs, state = env.reset(jax.random.key(0))
    assert bool(env.observation_space().contains(obs))
    assert "ball_x" in env.state_space().spaces
    assert int(env.default_params.max_steps) == PongConfig().max_steps
    assert not bool(env.is_terminal(state, env.default_params))


def test_bad_config_gives_one_readable_error():
    with pytest.raises(PongConfigError, match="paddle_half_height"):
        PongConfig(paddle_half_height=0.7)
    with pytest.raises(PongConfigError, match="ball_speed"):
        PongConfig(ball_speed=0.6)
    with pytest.raises(PongConfigError, match="Unknown PongConfig option"):
        PongConfig.from_dict({"max_stepz": 3})
    config = PongConfig.from_dict({"max_steps": 10, "serve_y_range": [0.3, 0.7]})
    assert config.serve_y_range == (0.3, 0.7) and dataclasses.asdict(config)["max_steps"] == 10
    assert int(to_params(config).max_steps) == 10
