"""`tnd-bench --suite atari`: ALE Pong throughput and what collection/evaluation keep of it.

Figures (env steps per second summed over envs, median over ``--repeats`` after a warm-up):

* ``raw_ale``     one ``ALE/Pong-v5`` env (RAM observations) stepped with random actions,
                  restarted (unseeded) when a game ends
* ``collection``  `collect_demonstrations`: the scripted expert with lookahead shot selection
                  (every ball toward the agent is played out for each candidate shot on an
                  emulator snapshot, several planned steps per played step), recording every step
* ``evaluation``  `evaluate_model` with a tiny jitted recurrent model through
                  `GreedyModelPolicy` (one jitted call per batched step)
* ``train``       timesteps/s of one jit-compiled training step (forward + backward) of an LSTM
                  behind the env's encoder (``pixels``: the conv encoder on 84x84 frames),
                  ``B = 8``, ``T = 32``

Target, as a ratio measured in the same run: evaluation >= 0.5x raw. Collection has no
target since the lookahead: its cost is the expert's planning, reported as it is.
Each timed repeat plays ``--atari-envs`` games of ``--atari-steps / --atari-envs`` steps
(default 8 x 2,000; a full game the expert wins is 3,000-5,000 steps). Collection and evaluation
include every per-game reset (`PongBatch` restarts a game with ``reset_game``, ~10 ms; it
no longer reseeds the env, which reloads the ROM, ~0.15-0.2 s) and the event bookkeeping;
env construction is done once, outside. The ``reset`` row reports the per-game reset cost
so that other game lengths can be extrapolated.

    tnd-bench --suite atari                          # object observations
    tnd-bench --suite atari --atari-obs-mode pixels  # one grey 84x84 frame, conv encoder
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def add_arguments(group) -> None:
    group.add_argument("--atari-envs", type=int, default=8, help="games played side by side")
    group.add_argument("--atari-steps", type=int, default=16000, help="env steps per timed repeat")
    group.add_argument("--atari-obs-mode", default="objects", choices=("objects", "pixels"))


def _median_rate(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, env construction paths)
    rates = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        steps = fn()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


TRAIN_BATCH, TRAIN_WINDOW = 8, 32  # the training row's windows


def _tiny_model(obs_shape):
    from flax import nnx

    from tnd.envs.atari_pong import NUM_ACTIONS
    from tnd.models.base import SequenceModel
    from tnd.models.encoders import make_io

    class Tiny(SequenceModel):
        def __init__(self, rngs):
            self.encoder, self.head = make_io(obs_shape, 16, 16, NUM_ACTIONS, rngs=rngs)
            self.cell = nnx.SimpleCell(16, 16, rngs=rngs)

        def initial_state(self, batch_size):
            return np.zeros((batch_size, 16), np.float32)

        def core_step(self, carry, features):
            return self.cell(carry, features)

    return Tiny(nnx.Rngs(0))


def run(args):
    from flax import nnx

    from experiments.bench.timing import median_seconds, training_call
    from tnd.envs.atari_pong import (
        ALE_ACTIONS, NUM_ACTIONS, AtariPongConfig, PongBatch, collect_demonstrations, evaluate_model, make_env,
        obs_shape,
    )
    from tnd.models import build_model

    envs, steps = args.atari_envs, args.atari_steps
    per_game = max(1, steps // envs)
    config = AtariPongConfig(obs_mode=args.atari_obs_mode, max_steps=per_game, noop_max=0)

    env = make_env(AtariPongConfig(max_steps=10 * steps))
    rng = np.random.default_rng(0)
    actions = ALE_ACTIONS[rng.integers(0, 3, steps)]

    def raw():
        env.reset(seed=0)
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:  # a finished game steps for free: restart it
                env.reset()
        return steps

    batch = PongBatch(config, envs)  # built once: env construction is not per-step cost

    def collection():
        demos = collect_demonstrations(config, num_episodes=envs, seed=0, num_envs=envs, progress=False, batch=batch)
        return demos.num_steps

    model = _tiny_model(obs_shape(config))

    def resets():
        for g in range(envs):
            batch.reset_row(g % envs, g)
        return envs

    def evaluation():
        tally = evaluate_model(model, config, num_games=envs, seed=0, num_envs=envs, progress=False, batch=batch)
        return int(tally.steps.sum())

    raw_rate = _median_rate(raw, args.repeats)
    env.close()
    common = {"obs_mode": config.obs_mode, "envs": envs}
    yield {"figure": "raw_ale", **common, "steps_per_s": raw_rate, "ratio": 1.0}
    rate = _median_rate(collection, args.repeats)
    yield {"figure": "collection", **common, "steps_per_s": rate, "ratio": rate / raw_rate}
    rate = _median_rate(evaluation, args.repeats)
    yield {"figure": "evaluation", **common, "steps_per_s": rate, "ratio": rate / raw_rate,
           "target": ">=0.5", "ok": rate / raw_rate >= 0.5}
    train_seconds = median_seconds({"train": training_call(
        build_model("lstm", obs_shape=obs_shape(config), num_actions=NUM_ACTIONS, rngs=nnx.Rngs(0), hidden_size=32),
        TRAIN_BATCH, TRAIN_WINDOW, obs_shape(config), NUM_ACTIONS)}, args.repeats, warmup=2)["train"]
    yield {"figure": "train", **common, "model": "lstm", "batch": TRAIN_BATCH, "window": TRAIN_WINDOW,
           "timesteps_per_s": TRAIN_BATCH * TRAIN_WINDOW / train_seconds}
    rate = _median_rate(resets, args.repeats)
    yield {"figure": "reset", **common, "ms_per_game": 1000.0 / rate, "steps_per_game": per_game}
    batch.close()
