"""Environments: one self-contained package per env, one registry, one JAX rollout.

    import tnd.envs
    env, params = tnd.envs.make("pong", max_steps=500)     # gymnax-style
    get_env("pong").collect(...), get_env("pong").evaluate(...)  # what the trainer calls

* `tnd.envs.pong`, `tnd.envs.atari_pong`: the built-in envs (each registers itself here).
* `registry`: `EnvDefinition`, `register_env`, `get_env`, `env_names`, `make`.
* `rollout`: `rollout(env, policy, keys, params, steps)`, `Policy`, `Trajectory`.
* `policies`, `jax_play`: greedy models and experts, and batched play of any JAX env.
* `tally`, `catch_tally`: per-game counts and their summaries; `demonstrations`: datasets;
  `spaces`: gymnax-style spaces.
"""

from tnd.envs.registry import EnvDefinition, UnknownEnvError, env_names, get_env, make, register_env
from tnd.envs import atari_pong, pong  # noqa: E402,F401  (the built-in envs register themselves)

__all__ = ["EnvDefinition", "UnknownEnvError", "env_names", "get_env", "make", "register_env"]
