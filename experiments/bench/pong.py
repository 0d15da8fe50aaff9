"""`tnd-bench --suite pong`: single-player Pong throughput in JAX.

Rows:
* ``env_random``  env steps/s with uniformly random actions: ``vmap`` over games inside a
  jitted ``lax.scan`` over time, through the gymnax-style ``step`` (auto-reset included).
* ``expert``      the analytic expert played by `evaluate_expert` (steps/s and its
  catches per round, with the catch cap).
* ``eval``        closed-loop `evaluate_model` of a policy: the registered TND model at its
  default ("table") size when `tnd.models.tnd_model` imports, else a tiny SimpleCell
  model (the ``model`` column says which). Reports the first call (compile + run) and the
  median of timed repeats after it.

Figures are medians over ``--repeats`` after a warm-up call (the eval row uses at most
``--pong-eval-repeats`` repeats: one evaluation is long).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.envs.pong import NUM_ACTIONS, PongConfig, SinglePlayerPong, evaluate_expert, evaluate_model, obs_shape
from tnd.envs.rollout import step_key
from tnd.evaluation.metrics import summarize
from tnd.models.base import SequenceModel, count_params


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--pong-games", type=int, default=4096, help="games vmapped in the env row")
    group.add_argument("--pong-steps", type=int, default=1000, help="scan length of the env row")
    group.add_argument("--pong-expert-games", type=int, default=1024, help="games in the expert row")
    group.add_argument("--pong-eval-games", type=int, default=1000, help="games in the eval row (0 skips it)")
    group.add_argument("--pong-eval-steps", type=int, default=None, help="steps per eval game (default: PongConfig.max_steps)")
    group.add_argument("--pong-eval-repeats", type=int, default=1, help="timed eval repeats after the first call")
    group.add_argument("--pong-model", default="tnd", help="registered model for the eval row (falls back to the vanilla RNN)")
    group.add_argument("--pong-model-width", type=int, default=None,
                       help="the model's width option (TND: num_neurons); default: the builder's default")


def _policy(name: str, width: int | None) -> tuple[SequenceModel, str]:
    import tnd.models  # noqa: F401  (registers the models that import cleanly)
    from tnd.models.registry import build_model, width_option

    try:
        if name == "tnd":
            import tnd.models.tnd_model  # noqa: F401
        options = {} if width is None else {width_option(name): width}
        return build_model(name, obs_shape=obs_shape(), num_actions=NUM_ACTIONS, rngs=nnx.Rngs(0), **options), name
    except Exception as error:  # model not there yet (or broken): the vanilla RNN plays, and the row says so
        fallback = build_model("rnn", obs_shape=obs_shape(), num_actions=NUM_ACTIONS, rngs=nnx.Rngs(0))
        return fallback, f"rnn (no '{name}': {type(error).__name__})"


def _median_time(fn, repeats: int) -> tuple[float, float]:
    """Median (wall seconds, process CPU seconds) of ``fn(i)``; CPU time is steadier on a shared machine."""
    wall, cpu = [], []
    for i in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(i + 1))
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def _env_random(games: int, steps: int, repeats: int) -> dict:
    env = SinglePlayerPong()
    params = env.default_params
    vstep = jax.vmap(env.step, (0, 0, 0, None))

    @jax.jit
    def run(seed):
        keys = jax.random.split(jax.random.key(seed), games)
        _, states = jax.vmap(env.reset, (0, None))(keys, params)

        def body(carry, t):
            states, total = carry
            actions = jax.random.randint(jax.random.fold_in(jax.random.key(seed), t), (games,), 0, NUM_ACTIONS)
            obs, states, reward, _, _ = vstep(jax.vmap(step_key, (0, None))(keys, t), states, actions, params)
            return (states, total + reward.sum() + obs[:, 0].sum()), None

        (_, total), _ = jax.lax.scan(body, (states, jnp.float32(0)), jnp.arange(steps, dtype=jnp.int32))
        return total

    jax.block_until_ready(run(0))
    seconds, cpu = _median_time(run, repeats)
    return {"row": "env_random", "games": games, "steps": steps, "seconds": seconds,
            "steps_per_s": games * steps / seconds, "steps_per_cpu_s": games * steps / cpu}


def run(args) -> Iterator[dict]:
    backend = jax.default_backend()
    yield {**_env_random(args.pong_games, args.pong_steps, args.repeats), "backend": backend}

    config = PongConfig()
    games = args.pong_expert_games
    evaluate_expert(config, num_games=games, seed=0)  # warm-up (compile)
    start = time.perf_counter()
    tally = evaluate_expert(config, num_games=games, seed=1)
    seconds = time.perf_counter() - start
    s = summarize(tally)
    yield {
        "row": "expert", "games": games, "steps": config.max_steps, "seconds": seconds,
        "steps_per_s": games * config.max_steps / seconds, "catches_per_round": s["catches_per_round"],
        "catch_rate": s["catch_rate"], "catches_per_game": s["catches"] / games,
        "max_catches_per_round": config.max_catches_per_round, "backend": backend,
    }

    if args.pong_eval_games <= 0:
        return
    steps = args.pong_eval_steps or PongConfig().max_steps
    config = PongConfig(max_steps=steps)
    model, label = _policy(args.pong_model, args.pong_model_width)
    games = args.pong_eval_games
    start = time.perf_counter()
    evaluate_model(model, config, num_games=games, seed=0, progress=False)
    first = time.perf_counter() - start
    seconds, cpu = _median_time(
        lambda i: evaluate_model(model, config, num_games=games, seed=i, progress=False).catches, args.pong_eval_repeats
    )
    yield {
        "row": "eval", "model": label, "params": count_params(model), "games": games, "steps": steps,
        "first_call_s": first, "seconds": seconds, "cpu_seconds": cpu, "steps_per_s": games * steps / seconds,
        "backend": backend,
    }
