"""Environments: one self-contained package per env, one registry, one JAX rollout.

    import tnd.envs
    env, params = tnd.envs.make("pong", max_steps=500)     # gymnax-style
    get_env("pong").collect(...), get_env("pong").evaluate(...)  # what the trainer calls

* `tnd.envs.pong`, `tnd.envs.atari_pong`: the built-in envs (each registers itself here).
* `registry`: `EnvDefinition` (what an env is, for every env the same contract; what differs
  is data: its dataset naming, how it draws its games and describes their counts, its
  tables' protocol note), `register_env`, `get_env`, `env_names`, `make`.
* `rollout`: `rollout(env, policy, keys, params, steps)`, `Policy`, `Trajectory`.
* `policies`, `batched_games`: greedy models and experts, and any JAX env's games played in jitted batches.
* `tally`, `catch_tally`: per-game counts and their summaries; `demonstrations`: datasets;
  `recording`: played games as frames with their running counts; `spaces`: gymnax-style spaces.
"""

from tnd.envs.registry import DatasetNaming, EnvDefinition, UnknownEnvError, env_names, get_env, make, register_env
from tnd.envs import atari_pong, pong  # noqa: E402,F401  (the built-in envs register themselves)

__all__ = ["DatasetNaming", "EnvDefinition", "UnknownEnvError", "env_names", "get_env", "make", "register_env"]
