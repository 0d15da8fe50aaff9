"""Writes an animation of the analytic expert playing single-player Pong (for the README).

    python -m experiments.render_pong                       # docs/pong_expert.gif
    python -m experiments.render_pong --steps 600 --epsilon 0.2 --out docs/pong_eps.gif

The game is a demonstration game (collection stream, the expert's actions with an
``epsilon`` chance of a random one, as `tnd.envs.pong.collect` plays them), played by the
jitted `tnd.envs.rollout.rollout` (states recorded over time) and drawn like ``tnd-render``
draws a trained model: `tnd.envs.pong.render.render_frames`, a header with the running
catch and miss counts (`tnd.evaluation.render`), written as ``.gif`` (``.mp4`` needs
imageio-ffmpeg).
Exit status 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import argparse
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np

from tnd.envs.policies import epsilon_expert_policy
from tnd.envs.pong import (
    COLLECT_STREAM, NUM_ACTIONS, PongConfig, SinglePlayerPong, expert_action, game_seeds, step_events, to_params,
)
from tnd.envs.pong.render import check_animation_path, render_frames, write_animation
from tnd.envs.rollout import rollout
from tnd.evaluation.render import PONG_FPS, PONG_PIXELS_PER_UNIT, Recording, annotate, overlay_lines

PROG = "render_pong"


@functools.partial(jax.jit, static_argnames=("steps",))
def play_expert_game(params, seed, epsilon, steps):
    """One game of ``steps`` steps; returns the states ``[steps + 1]`` (first = after reset)
    and each step's ``catches`` / ``misses`` events ``[steps]`` (int)."""
    env = SinglePlayerPong()
    keys = jax.random.key(seed)[None]
    _, first = env.reset_env(keys[0], params)
    policy = epsilon_expert_policy(expert_action, params, (), epsilon, NUM_ACTIONS)
    _, trajectory = rollout(env, policy, keys, params, steps, events=step_events, record=True)
    states = jax.tree.map(lambda start, rest: jnp.concatenate([start[None], rest[:, 0]]), first, trajectory.states)
    return states, trajectory.events["catches"][:, 0], trajectory.events["misses"][:, 0]


def expert_recording(steps: int, seed: int, epsilon: float, pixels_per_unit: int) -> Recording:
    """The expert's game ``seed`` (collection stream) as frames ``[steps + 1]`` with running counts."""
    config = PongConfig(max_steps=max(steps, 1))
    params = to_params(config)
    game = int(game_seeds(seed, 1, COLLECT_STREAM)[0])
    states, catch, miss = jax.device_get(play_expert_game(params, game, jnp.float32(epsilon), steps=steps))
    start = np.zeros(1, np.int64)  # the first frame (after reset) has no events yet
    return Recording(
        env="pong",
        frames=render_frames(states, params, pixels_per_unit),
        game=np.zeros(steps + 1, np.int64),
        step=np.arange(steps + 1),
        counts={"catches": np.cumsum(np.concatenate([start, catch])), "misses": np.cumsum(np.concatenate([start, miss]))},
        seeds=(game,),
        fps=PONG_FPS,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/pong_expert.gif", help="output path (.gif or .mp4)")
    parser.add_argument("--steps", type=int, default=400, help="agent steps to show")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilon", type=float, default=0.0, help="probability of a random action")
    parser.add_argument("--fps", type=int, default=PONG_FPS)
    parser.add_argument("--pixels-per-unit", type=int, default=PONG_PIXELS_PER_UNIT,
                        help="frame resolution (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        check_animation_path(args.out)
        if args.steps < 0 or args.fps < 1 or args.pixels_per_unit < 1 or not 0.0 <= args.epsilon <= 1.0:
            raise ValueError("need --steps >= 0, --fps >= 1, --pixels-per-unit >= 1 and --epsilon in [0, 1].")
        recording = expert_recording(args.steps, args.seed, args.epsilon, args.pixels_per_unit)
        label = "expert" if args.epsilon == 0 else f"expert eps {args.epsilon:g}"
        frames = annotate(recording.frames, overlay_lines(recording, label))
        path = write_animation(frames, args.out, fps=args.fps)
    except ValueError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
