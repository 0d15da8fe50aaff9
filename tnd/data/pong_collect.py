"""Demonstrations of the analytic expert on single-player Pong, collected inside ``jit``.

One jitted call plays a batch of games: ``vmap`` over games inside one ``lax.scan`` over
``config.max_steps`` steps. Each game is one episode of exactly ``max_steps`` steps (the
step cap is the only end), so every episode has the same length.

Per step ``t`` the record holds the observation seen *before* acting, the expert's label
for it, the action actually taken (with probability ``epsilon`` a uniformly random
action, which may equal the label: the clone sees recoveries while the label stays the
expert's), and the reward / catch / miss that the step produced.

Game ``e`` is seeded by ``seeds[e]`` from `tnd.envs.pong.game_seeds` (collection
stream), so it can be replayed alone and never coincides with an evaluation game of the
same run seed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from tnd.data.demonstrations import Demonstrations
from tnd.envs.actions import NUM_ACTIONS
from tnd.envs.pong import COLLECT_STREAM, PongConfig, PongConfigError, SinglePlayerPong, game_seeds, step_key, to_params
from tnd.envs.pong_expert import DEFAULT_AIM, DEFAULT_DEADBAND, expert_action

_ENV = SinglePlayerPong()
DEFAULT_BATCH = 1024  # games per jitted call: bounds host memory ([B, T, 5] float32 per call)


@functools.partial(jax.jit, static_argnames=("max_steps",))
def _collect_batch(params, seeds, epsilon, aim, deadband, max_steps):
    """Plays ``B = len(seeds)`` games; returns arrays ``[B, T, ...]`` (games first)."""
    keys = jax.vmap(jax.random.key)(seeds)
    obs, states = jax.vmap(_ENV.reset_env, (0, None))(keys, params)
    vstep = jax.vmap(_ENV.step_env, (0, 0, 0, None))
    vexpert = jax.vmap(expert_action, (0, None, None, None))

    def body(c, t):
        states, obs = c
        labels = vexpert(states, params, aim, deadband)
        env_keys, noise_keys = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(step_key(k, t)))(keys), 1, 0)
        noise = jax.vmap(lambda k: jax.random.uniform(k, (2,)))(noise_keys)
        random_actions = jnp.minimum((noise[:, 1] * NUM_ACTIONS).astype(jnp.int32), NUM_ACTIONS - 1)
        taken = jnp.where(noise[:, 0] < epsilon, random_actions, labels)
        next_obs, states, reward, _, info = vstep(env_keys, states, taken, params)
        record = (obs, labels, taken, reward, info["catch"], info["miss"])
        return (states, next_obs), record

    _, record = jax.lax.scan(body, (states, obs), jnp.arange(max_steps, dtype=jnp.int32))
    return tuple(jnp.swapaxes(x, 0, 1) for x in record)


def collect_demonstrations(
    config: PongConfig,
    *,
    num_episodes: int,
    seed: int,
    epsilon: float = 0.0,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
    aim: float = DEFAULT_AIM,
    deadband: float = DEFAULT_DEADBAND,
) -> Demonstrations:
    """Expert demonstrations: ``num_episodes`` games of ``config.max_steps`` steps each.

    Returns `Demonstrations` with ``S = num_episodes * max_steps`` steps: observations
    ``[S, 5]`` float32, expert labels and taken actions ``[S]`` int32, rewards ``[S]``
    float32, catches/misses ``[S]`` bool, ``episode_starts`` ``[E]`` and per-game
    ``seeds`` ``[E]`` int64. ``metadata`` holds env="pong", obs_mode="objects", the
    config, the expert settings, ``epsilon`` and ``seed``. Deterministic per ``seed``.
    """
    if not 0.0 <= float(epsilon) <= 1.0:
        raise PongConfigError(f"epsilon={epsilon} must lie in [0, 1] (probability of a random action).")
    if int(batch_size) < 1:
        raise PongConfigError(f"batch_size={batch_size} must be >= 1.")
    seeds = game_seeds(seed, num_episodes, COLLECT_STREAM)
    params = to_params(config)
    steps = int(config.max_steps)
    parts = []
    with tqdm(total=len(seeds), desc="pong demos", unit="game", disable=not progress) as bar:
        for start in range(0, len(seeds), int(batch_size)):
            chunk = seeds[start:start + int(batch_size)]
            out = _collect_batch(
                params, jnp.asarray(chunk, jnp.int32), jnp.float32(epsilon), jnp.float32(aim),
                jnp.float32(deadband), max_steps=steps,
            )
            parts.append([np.asarray(x).reshape((-1,) + x.shape[2:]) for x in jax.device_get(out)])
            bar.update(len(chunk))
    obs, labels, taken, rewards, catches, misses = (np.concatenate(xs) for xs in zip(*parts))
    return Demonstrations(
        observations=obs.astype(np.float32),
        actions=labels.astype(np.int32),
        taken_actions=taken.astype(np.int32),
        rewards=rewards.astype(np.float32),
        catches=catches.astype(bool),
        misses=misses.astype(bool),
        episode_starts=(np.arange(len(seeds), dtype=np.int64) * steps),
        seeds=seeds.astype(np.int64),
        metadata={
            "env": "pong",
            "obs_mode": "objects",
            "config": config.to_dict(),
            "expert": {"name": "analytic", "aim": float(aim), "deadband": float(deadband)},
            "epsilon": float(epsilon),
            "seed": int(seed),
        },
    )
