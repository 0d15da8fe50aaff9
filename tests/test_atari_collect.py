"""Expert collection and the greedy model policy on short games."""

import numpy as np
from flax import nnx

from tnd.envs.atari_pong import AtariPongConfig, collect_demonstrations, evaluate_model, obs_shape
from tnd.envs.policies import GreedyModelPolicy
from tiny_models import TinyRNN


def test_collect_with_perturbations():
    config = AtariPongConfig(max_steps=100)
    demos = collect_demonstrations(config, num_episodes=3, seed=1, epsilon=0.3, num_envs=2, progress=False)
    assert demos.num_episodes == 3 and demos.num_steps == 300
    assert demos.observations.shape == (300, 5)
    assert demos.episode_lengths.tolist() == [100, 100, 100]
    differ = (demos.actions != demos.taken_actions).mean()
    assert 0.05 < differ < 0.4  # ~ epsilon * 2/3
    assert demos.metadata["obs_mode"] == "objects" and demos.metadata["env"] == "ALE/Pong-v5"
    again = collect_demonstrations(config, num_episodes=3, seed=1, epsilon=0.3, num_envs=3, progress=False)
    np.testing.assert_array_equal(demos.taken_actions, again.taken_actions)  # batch-independent


def test_greedy_model_policy_matches_sequence_call():
    config = AtariPongConfig(max_steps=50)
    model = TinyRNN(8, obs_shape=obs_shape(config), rngs=nnx.Rngs(0))
    policy = GreedyModelPolicy(model)
    obs = np.random.default_rng(0).random((2, 5, 5), dtype=np.float32)
    carry = policy.initial_state(2)
    actions = []
    for t in range(5):
        carry, a = policy.act(carry, obs[:, t], np.array([t == 0, t == 3]))
        actions.append(a)
    resets = np.zeros((2, 5), bool)
    resets[:, 0], resets[1, 3] = True, True
    _, logits = model(obs, resets=resets)
    np.testing.assert_array_equal(np.stack(actions, 1), np.argmax(np.asarray(logits), -1))
    tally = evaluate_model(model, config, num_games=2, seed=0, num_envs=2, progress=False)
    assert tally.steps.tolist() == [50, 50]
