"""Writes an animation of the analytic expert playing single-player Pong (for the README).

    python -m experiments.render_pong                       # docs/pong_expert.gif
    python -m experiments.render_pong --steps 600 --epsilon 0.2 --out docs/pong_eps.gif

The game is played inside one jitted ``lax.scan`` (states stacked over time), rendered
with `tnd.envs.pong_render.render_frames` and written with imageio (``.gif``; ``.mp4``
needs imageio-ffmpeg).
"""

from __future__ import annotations

import argparse
import functools
import sys

import jax
import jax.numpy as jnp

from tnd.envs.actions import NUM_ACTIONS
from tnd.envs.pong import COLLECT_STREAM, PongConfig, SinglePlayerPong, game_seeds, step_key, to_params
from tnd.envs.pong_expert import expert_action
from tnd.envs.pong_render import render_frames, write_animation


@functools.partial(jax.jit, static_argnames=("steps",))
def play_expert_game(params, seed, epsilon, steps):
    """One game of ``steps`` steps; returns the states ``[steps + 1]`` (first = after reset)."""
    env = SinglePlayerPong()
    key = jax.random.key(seed)
    _, state = env.reset_env(key, params)

    def body(state, t):
        env_key, noise_key = jax.random.split(step_key(key, t))
        noise = jax.random.uniform(noise_key, (2,))
        action = jnp.where(noise[0] < epsilon, (noise[1] * NUM_ACTIONS).astype(jnp.int32), expert_action(state, params))
        _, next_state, _, _, _ = env.step_env(env_key, state, action, params)
        return next_state, next_state

    _, states = jax.lax.scan(body, state, jnp.arange(steps, dtype=jnp.int32))
    return jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), state, states)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="render_pong", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/pong_expert.gif", help="output path (.gif or .mp4)")
    parser.add_argument("--steps", type=int, default=400, help="agent steps to show")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilon", type=float, default=0.0, help="probability of a random action")
    parser.add_argument("--fps", type=int, default=20)
    parser.add_argument("--pixels-per-unit", type=int, default=120, help="frame resolution")
    args = parser.parse_args(argv)

    config = PongConfig(max_steps=max(args.steps, 1))
    params = to_params(config)
    seed = int(game_seeds(args.seed, 1, COLLECT_STREAM)[0])
    states = play_expert_game(params, seed, jnp.float32(args.epsilon), steps=args.steps)
    frames = render_frames(states, params, args.pixels_per_unit)
    path = write_animation(frames, args.out, fps=args.fps)
    print(f"wrote {path}: {frames.shape[0]} frames of {frames.shape[1]}x{frames.shape[2]}")


if __name__ == "__main__":
    main(sys.argv[1:])
