"""The settings of single-player Pong: the action ids, the observation's size, the plain-Python
`PongConfig` (validated) and the `PongParams` pytree a jitted step reads (`to_params`).

The game itself is `tnd.envs.pong.env`; this module holds what configures it, so that the
physics (`tnd.envs.pong.physics`), the env and its perturbations all read one definition.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

STAY, UP, DOWN = 0, 1, 2
NUM_ACTIONS = 3
OBS_DIM = 5
OPPONENT_Y = 0.5  # constant stand-in for the absent opponent paddle (objects-mode slot 3)
PERTURBATION_OPTIONS = ("obs_noise", "action_delay", "repeat_action_probability", "occlusion_steps", "occlusion_rate")
MAX_PERTURBATION_STEPS = 1000  # action_delay and occlusion_steps: longer is not a perturbation


class PongConfigError(ValueError):
    """An invalid single-player Pong configuration."""


@dataclasses.dataclass(frozen=True)
class PongConfig:
    """Plain-Python configuration of single-player Pong (the trainer builds it from Hydra).

    Lengths are in court units (the court is the unit square), speeds in court units per
    step, angles in radians. `to_params` turns it into the `PongParams` pytree.

    Why these defaults: a rally (paddle -> left wall -> paddle) takes about 16 steps, so a
    2,000-step game holds ~120 catches and a perfect player completes at least one
    100-catch round per game (rounds cut off by the step cap are not counted, so slower
    balls would leave good players with no completed round at all). The paddle's top
    speed is ``paddle_accel / paddle_friction`` = 0.08 per step and it coasts
    ``v (1 - f) / f`` (up to 0.24) after release: chasing the ball without prediction
    gets ~11 catches per round, the predicting expert never misses.
    """

    max_steps: int = 2_000  # steps per episode (game); the only episode end
    max_catches_per_round: int = 100  # a round that reaches this many catches ends (won)
    paddle_half_height: float = 0.08  # paddle spans centre +- this
    ball_radius: float = 0.015  # added to the paddle half height for the catch test; drawing
    ball_speed: float = 0.12  # serve speed and speed after a centre hit
    edge_speedup: float = 0.25  # speed after a hit = ball_speed * (1 + edge_speedup * |offset|)
    max_bounce_angle: float = 0.8  # return angle at the paddle's edge (|offset| = 1)
    paddle_accel: float = 0.02  # velocity added per step while UP/DOWN is held
    paddle_friction: float = 0.25  # fraction of paddle velocity lost per step
    serve_delay: int = 8  # observations without a ball after a round ends
    serve_x: float = 0.5  # serve line
    serve_y_range: tuple[float, float] = (0.2, 0.8)  # serve height, uniform
    serve_angle: float = 0.6  # serve angle uniform in +- this, heading to the left wall
    # Perturbations (`tnd.envs.pong.perturb`; all off by default): what the agent sees and
    # how its actions land change, the game itself does not.
    obs_noise: float = 0.0  # Gaussian noise (sigma, court units) on the observed positions
    action_delay: int = 0  # steps between choosing an action and its execution
    repeat_action_probability: float = 0.0  # sticky actions: the last executed action repeats
    occlusion_steps: int = 0  # k: an occlusion holds the ball's observation for k steps
    occlusion_rate: float = 0.0625  # chance per visible step that an occlusion starts (once a rally)

    def __post_init__(self):
        object.__setattr__(self, "serve_y_range", tuple(float(v) for v in self.serve_y_range))
        problems = []
        if int(self.max_steps) < 1:
            problems.append(f"max_steps={self.max_steps} must be >= 1")
        if int(self.max_catches_per_round) < 1:
            problems.append(f"max_catches_per_round={self.max_catches_per_round} must be >= 1")
        if not 0.0 < self.paddle_half_height < 0.5:
            problems.append(f"paddle_half_height={self.paddle_half_height} must lie in (0, 0.5)")
        if self.ball_radius < 0:
            problems.append(f"ball_radius={self.ball_radius} must be >= 0")
        top_speed = self.ball_speed * (1 + self.edge_speedup)
        if not 0.0 < self.ball_speed or top_speed >= 0.5 or self.edge_speedup < 0:
            problems.append(
                f"ball_speed={self.ball_speed}, edge_speedup={self.edge_speedup}: need ball_speed > 0, "
                "edge_speedup >= 0 and ball_speed * (1 + edge_speedup) < 0.5 (one wall per step)"
            )
        if not 0.0 <= self.max_bounce_angle < math.pi / 2 or not 0.0 <= self.serve_angle < math.pi / 2:
            problems.append("max_bounce_angle and serve_angle must lie in [0, pi/2)")
        if self.paddle_accel <= 0 or not 0.0 < self.paddle_friction <= 1.0:
            problems.append(
                f"paddle_accel={self.paddle_accel} must be > 0 and paddle_friction={self.paddle_friction} in (0, 1]"
            )
        if int(self.serve_delay) < 0:
            problems.append(f"serve_delay={self.serve_delay} must be >= 0")
        lo, hi = self.serve_y_range if len(self.serve_y_range) == 2 else (-1.0, -1.0)
        if not (0.0 <= lo <= hi <= 1.0) or not 0.0 < self.serve_x < 1.0:
            problems.append(
                f"serve_y_range={self.serve_y_range} must be (lo, hi) with 0 <= lo <= hi <= 1 and "
                f"serve_x={self.serve_x} in (0, 1)"
            )
        if not 0.0 <= self.obs_noise <= 1.0:
            problems.append(f"obs_noise={self.obs_noise} must lie in [0, 1] (sigma in court units)")
        if not 0 <= int(self.action_delay) <= MAX_PERTURBATION_STEPS:
            problems.append(f"action_delay={self.action_delay} must lie in 0..{MAX_PERTURBATION_STEPS} steps")
        if not 0.0 <= self.repeat_action_probability < 1.0:
            problems.append(f"repeat_action_probability={self.repeat_action_probability} must lie in [0, 1)")
        if not 0 <= int(self.occlusion_steps) <= MAX_PERTURBATION_STEPS:
            problems.append(f"occlusion_steps={self.occlusion_steps} must lie in 0..{MAX_PERTURBATION_STEPS} steps")
        if not 0.0 < self.occlusion_rate <= 1.0:
            problems.append(f"occlusion_rate={self.occlusion_rate} must lie in (0, 1]")
        if problems:
            raise PongConfigError("Invalid PongConfig: " + "; ".join(problems) + ".")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "PongConfig":
        """Builds a config from a plain mapping (e.g. a resolved Hydra node); unknown keys fail."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PongConfigError(f"Unknown PongConfig option(s) {unknown}; valid options: {sorted(known)}.")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists). Perturbation options at their defaults (off)
        are left out, so an unperturbed config addresses the same datasets as before they existed."""
        d = dataclasses.asdict(self)
        d["serve_y_range"] = list(self.serve_y_range)
        defaults = PongConfig.__dataclass_fields__
        return {k: v for k, v in d.items() if k not in PERTURBATION_OPTIONS or v != defaults[k].default}


def obs_shape(config: PongConfig | None = None) -> tuple[int, ...]:
    """Shape of one observation: ``(5,)`` for every configuration."""
    return (OBS_DIM,)


@struct.dataclass
class PongParams:
    """Environment parameters as a pytree (every field a traced leaf: one compile serves all)."""

    max_steps: jax.Array
    max_catches_per_round: jax.Array
    paddle_half_height: jax.Array
    ball_radius: jax.Array
    ball_speed: jax.Array
    edge_speedup: jax.Array
    max_bounce_angle: jax.Array
    paddle_accel: jax.Array
    paddle_friction: jax.Array
    serve_delay: jax.Array
    serve_x: jax.Array
    serve_y_low: jax.Array
    serve_y_high: jax.Array
    serve_angle: jax.Array


def to_params(config: PongConfig) -> PongParams:
    """The `PongParams` pytree of a `PongConfig` (int32 counts, float32 lengths)."""
    f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
    i32 = functools.partial(jnp.asarray, dtype=jnp.int32)
    return PongParams(
        max_steps=i32(config.max_steps),
        max_catches_per_round=i32(config.max_catches_per_round),
        paddle_half_height=f32(config.paddle_half_height),
        ball_radius=f32(config.ball_radius),
        ball_speed=f32(config.ball_speed),
        edge_speedup=f32(config.edge_speedup),
        max_bounce_angle=f32(config.max_bounce_angle),
        paddle_accel=f32(config.paddle_accel),
        paddle_friction=f32(config.paddle_friction),
        serve_delay=i32(config.serve_delay),
        serve_x=f32(config.serve_x),
        serve_y_low=f32(config.serve_y_range[0]),
        serve_y_high=f32(config.serve_y_range[1]),
        serve_angle=f32(config.serve_angle),
    )
