"""Expert demonstrations on single-player Pong, collected inside jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tnd.envs.demonstrations import Demonstrations
from tnd.envs.pong import (
    PongConfig, PongConfigError, SinglePlayerPong, collect_demonstrations, expert_action, to_params,
)
from tnd.envs.rollout import step_key

CONFIG = PongConfig(max_steps=120)


@pytest.fixture(scope="module")
def demos():
    return collect_demonstrations(CONFIG, num_episodes=5, seed=11, epsilon=0.3, progress=False, batch_size=3)


def test_shapes_lengths_and_metadata(demos):
    assert isinstance(demos, Demonstrations)
    steps = 5 * CONFIG.max_steps
    assert demos.observations.shape == (steps, 5) and demos.observations.dtype == np.float32
    for name in ("actions", "taken_actions"):
        assert getattr(demos, name).shape == (steps,) and getattr(demos, name).dtype == np.int32
    assert demos.rewards.dtype == np.float32 and demos.catches.dtype == bool and demos.misses.dtype == bool
    np.testing.assert_array_equal(demos.episode_starts, np.arange(5) * CONFIG.max_steps)
    np.testing.assert_array_equal(demos.episode_lengths, CONFIG.max_steps)
    assert demos.seeds.shape == (5,) and len(set(demos.seeds.tolist())) == 5
    assert demos.metadata["env"] == "pong" and demos.metadata["obs_mode"] == "objects"
    assert demos.metadata["config"]["max_steps"] == CONFIG.max_steps and demos.metadata["epsilon"] == 0.3
    assert set(np.unique(demos.actions)) <= {0, 1, 2}
    np.testing.assert_array_equal(demos.rewards, demos.catches.astype(np.float32) - demos.misses)


def test_epsilon_perturbs_taken_actions_but_not_labels(demos):
    differ = (demos.actions != demos.taken_actions).mean()
    assert 0.1 < differ < 0.3  # 0.3 random, of which 2/3 differ from the label: ~0.2
    clean = collect_demonstrations(CONFIG, num_episodes=2, seed=11, epsilon=0.0, progress=False)
    np.testing.assert_array_equal(clean.actions, clean.taken_actions)


def test_labels_are_the_experts_on_the_replayed_states(demos):
    """Replaying episode 0's taken actions reproduces its observations and labels."""
    env = SinglePlayerPong()
    params = to_params(CONFIG)
    key = jax.random.key(int(demos.seeds[0]))
    obs, state = env.reset_env(key, params)
    step = jax.jit(env.step_env)
    label = jax.jit(expert_action)
    for t in range(CONFIG.max_steps):
        np.testing.assert_allclose(obs, demos.observations[t], atol=1e-6)
        assert int(label(state, params)) == demos.actions[t]
        env_key, _ = jax.random.split(step_key(key, jnp.int32(t)))
        obs, state, reward, _, info = step(env_key, state, int(demos.taken_actions[t]), params)
        assert bool(info["catch"]) == demos.catches[t] and float(reward) == demos.rewards[t]


def test_deterministic_per_seed_and_independent_of_batching(demos):
    again = collect_demonstrations(CONFIG, num_episodes=5, seed=11, epsilon=0.3, progress=False, batch_size=3)
    other = collect_demonstrations(CONFIG, num_episodes=5, seed=12, epsilon=0.3, progress=False, batch_size=3)
    one_batch = collect_demonstrations(CONFIG, num_episodes=5, seed=11, epsilon=0.3, progress=False, batch_size=5)
    for name in ("observations", "actions", "taken_actions", "seeds"):
        np.testing.assert_array_equal(getattr(again, name), getattr(demos, name))
        np.testing.assert_array_equal(getattr(one_batch, name), getattr(demos, name))
    assert not np.array_equal(other.observations, demos.observations)


def test_bad_arguments():
    with pytest.raises(PongConfigError, match="epsilon"):
        collect_demonstrations(CONFIG, num_episodes=1, seed=0, epsilon=1.5, progress=False)
    with pytest.raises(PongConfigError, match="num_games"):
        collect_demonstrations(CONFIG, num_episodes=0, seed=0, progress=False)
