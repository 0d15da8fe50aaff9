"""Single-player Pong in pure JAX: the paper's protocol, runnable under jit/vmap/scan.

The court is the unit square, ``x`` growing to the right and ``y`` growing **downward**
(as in Atari frames). Three walls (left ``x = 0``, top ``y = 0``, bottom ``y = 1``) reflect
the ball; the agent's paddle moves along the fourth side, the paddle line ``x = 1``.

* **Ball.** A point moving ``(vx, vy)`` per step. Wall reflections flip one velocity
  component and preserve speed exactly (computed in closed form, so any step size works).
  When the ball reaches the paddle line it is **caught** if it meets the paddle
  (``|y_ball - y_paddle| <= paddle_half_height + ball_radius``), else it is **missed**.
  A catch sends the ball back with an angle and speed set by where it met the paddle (as
  in Pong): ``offset in [-1, 1]`` from the paddle centre gives angle
  ``offset * max_bounce_angle`` and speed ``ball_speed * (1 + edge_speedup * |offset|)``.
* **Rounds.** A round lasts until a miss, or until ``max_catches_per_round`` catches (the
  cap: a round that reaches it ends as won). After a round ends the ball is gone for
  ``serve_delay`` observations (no-ball flag 1), then it is served from the centre line
  ``x = serve_x`` at a random height in ``serve_y_range`` and a random angle within
  ``+-serve_angle``, heading to the far (left) wall: seeded randomness at every serve.
* **Paddle.** Not position-controlled: actions accelerate it and friction slows it
  (``v <- (1 - paddle_friction) v + paddle_accel * dir``; ``dir`` is -1 for UP, +1 for
  DOWN, 0 for STAY), so it coasts after a key is released (about ``v (1 - f) / f``) and
  control needs prediction. It stops dead at the walls (centre clipped to
  ``[h, 1 - h]``).
* **Actions** (`NUM_ACTIONS` = 3): STAY=0, UP=1 (decreases ``y``: toward the top wall),
  DOWN=2 (increases ``y``).
* **Observation** (Atari Pong's ``objects`` contract): float32 ``[5]`` in ``[0, 1]`` =
  (ball x, ball y, agent paddle y (centre), opponent paddle y, no-ball flag). Positions
  only, no velocities. There is no opponent: its slot holds the constant
  `OPPONENT_Y` = 0.5. While no ball is in play, ball x and y read 0 and the flag reads 1.
* **Reward**: +1 per catch, -1 per miss (the metrics count events, not reward).
* **Episode**: ``done`` when ``max_steps`` steps have been played (the only end; the step
  cap and the catch cap are in the params and in ``info``). `SinglePlayerPong.step`
  auto-resets like gymnax: on ``done`` it returns the first observation and state of a
  new game, while ``reward``/``info`` describe the step that ended.

The interface mirrors gymnax's ``Environment`` (``default_params``, ``reset``/``step`` with
auto-reset, ``reset_env``/``step_env``, ``get_obs``, ``is_terminal``, ``discount``,
``name``, ``num_actions``, ``action_space``/``observation_space``/``state_space``) so its
wrappers apply. Every step is branch-free (``jnp.where``), so ``vmap`` over games costs
no divergence.

``info`` of each step (all arrays): ``catch``, ``miss``, ``round_over``, ``capped`` (round
ended by the catch cap) as bool; ``round_catches`` int32 (catches in the current round,
or in the round that just ended); ``max_steps`` and ``max_catches_per_round`` (int32 caps);
``discount`` float32.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tnd.envs.spaces import Box, Dict, Discrete

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


@struct.dataclass
class PongState:
    """One game. Scalars per game (vmap adds a leading games axis).

    ``serve_timer`` > 0 means no ball is in play (the ball fields then hold the last
    position and are not observed); ``round_catches`` counts catches in the current round.
    """

    ball_x: jax.Array
    ball_y: jax.Array
    ball_vx: jax.Array
    ball_vy: jax.Array
    paddle_y: jax.Array
    paddle_v: jax.Array
    serve_timer: jax.Array
    round_catches: jax.Array
    time: jax.Array


COLLECT_STREAM, EVAL_STREAM = 0, 1  # seed streams: collected and evaluated games never coincide


def game_seeds(seed: int, num_games: int, stream: int = EVAL_STREAM) -> np.ndarray:
    """Per-game integer seeds (int64 in ``[0, 2**31)``) derived from one run seed.

    Game ``g`` is played from ``jax.random.key(seeds[g])``, so each game can be replayed
    alone. ``stream`` separates uses (demonstrations vs evaluation) of the same run seed.
    """
    if int(num_games) < 1:
        raise PongConfigError(f"num_games={num_games} must be >= 1.")
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(int(num_games), np.uint32)
    return (state >> 1).astype(np.int64)


# ------------------------------------------------------------------ physics helpers
def fold(u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Maps an unfolded coordinate onto ``[0, 1]`` between two reflecting walls.

    Returns ``(position, flipped)``: ``flipped`` is true where an odd number of
    reflections happened (the velocity component changes sign).
    """
    p = jnp.mod(u, 2.0)
    return 1.0 - jnp.abs(p - 1.0), p > 1.0


def serve(key: jax.Array, params: PongParams) -> tuple[jax.Array, ...]:
    """A fresh serve ``(x, y, vx, vy)``: random height and angle, heading to the left wall."""
    u = jax.random.uniform(key, (2,), jnp.float32)
    y = params.serve_y_low + (params.serve_y_high - params.serve_y_low) * u[0]
    angle = params.serve_angle * (2.0 * u[1] - 1.0)
    vx = -params.ball_speed * jnp.cos(angle)
    vy = params.ball_speed * jnp.sin(angle)
    return jnp.broadcast_to(params.serve_x, y.shape), y, vx, vy


def crossing_y(state: PongState) -> jax.Array:
    """Where the ball in play will next cross the paddle line ``x = 1`` (walls folded in).

    Used by the analytic expert; a ball moving left first reflects off the left wall.
    """
    speed_x = jnp.maximum(jnp.abs(state.ball_vx), 1e-6)
    distance = jnp.where(state.ball_vx > 0, 1.0 - state.ball_x, state.ball_x + 1.0)
    y, _ = fold(state.ball_y + state.ball_vy * distance / speed_x)
    return y


# ------------------------------------------------------------------ the environment
class SinglePlayerPong:
    """Single-player Pong with a gymnax-style functional interface (see module docstring)."""

    def __init__(self, config: PongConfig | None = None):
        self.config = PongConfig() if config is None else config

    # Equal configs give equal envs, so jit caches (``self`` is static) are shared.
    def __hash__(self) -> int:
        return hash((type(self), self.config))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config == self.config

    # ---------------------------------------------------------------- gymnax interface
    @property
    def default_params(self) -> PongParams:
        return to_params(self.config)

    @functools.partial(jax.jit, static_argnums=(0,))
    def step(
        self, key: jax.Array, state: PongState, action: jax.Array, params: PongParams | None = None
    ) -> tuple[jax.Array, PongState, jax.Array, jax.Array, dict[str, jax.Array]]:
        """One step with auto-reset: on ``done`` the new game's obs/state are returned.

        The reset reuses ``key``: only one of the two outcomes is ever kept, so the
        realised trajectory stays a fresh draw (and a key split per step is saved).
        """
        if params is None:
            params = self.default_params
        ball = serve(key, params)  # one draw serves both outcomes
        obs_st, state_st, reward, done, info = self._step_with_serve(ball, state, action, params)
        obs_re, state_re = self._reset_with_serve(ball, params)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_re, state_st)
        obs = jnp.where(done, obs_re, obs_st)
        return obs, state, reward, done, info

    @functools.partial(jax.jit, static_argnums=(0,))
    def reset(self, key: jax.Array, params: PongParams | None = None) -> tuple[jax.Array, PongState]:
        if params is None:
            params = self.default_params
        return self.reset_env(key, params)

    def reset_env(self, key: jax.Array, params: PongParams) -> tuple[jax.Array, PongState]:
        """A new game: ball just served, paddle at rest in the middle."""
        return self._reset_with_serve(serve(key, params), params)

    def step_env(
        self, key: jax.Array, state: PongState, action: jax.Array, params: PongParams
    ) -> tuple[jax.Array, PongState, jax.Array, jax.Array, dict[str, jax.Array]]:
        """One step without reset: paddle, then ball (walls, paddle line), then serve."""
        return self._step_with_serve(serve(key, params), state, action, params)

    def _reset_with_serve(self, ball: tuple[jax.Array, ...], params: PongParams) -> tuple[jax.Array, PongState]:
        x, y, vx, vy = ball
        state = PongState(
            ball_x=x,
            ball_y=y,
            ball_vx=vx,
            ball_vy=vy,
            paddle_y=jnp.float32(0.5),
            paddle_v=jnp.float32(0.0),
            serve_timer=jnp.int32(0),
            round_catches=jnp.int32(0),
            time=jnp.int32(0),
        )
        return self.get_obs(state, params), state

    def _step_with_serve(
        self, ball: tuple[jax.Array, ...], state: PongState, action: jax.Array, params: PongParams
    ) -> tuple[jax.Array, PongState, jax.Array, jax.Array, dict[str, jax.Array]]:
        """`step_env` given the serve ``(x, y, vx, vy)`` used if a serve happens this step."""
        f32 = jnp.float32
        # Paddle: momentum with friction, stopped dead at the walls.
        direction = jnp.where(action == UP, f32(-1.0), jnp.where(action == DOWN, f32(1.0), f32(0.0)))
        pv = (1.0 - params.paddle_friction) * state.paddle_v + params.paddle_accel * direction
        py_free = state.paddle_y + pv
        py = jnp.clip(py_free, params.paddle_half_height, 1.0 - params.paddle_half_height)
        pv = jnp.where(py == py_free, pv, f32(0.0))

        # Ball: free flight with the left/top/bottom walls folded in.
        in_play = state.serve_timer == 0
        x_free = state.ball_x + state.ball_vx
        hit_left = x_free < 0.0
        x_wall = jnp.abs(x_free)
        vx_wall = jnp.where(hit_left, -state.ball_vx, state.ball_vx)
        y_wall, flip = fold(state.ball_y + state.ball_vy)
        vy_wall = jnp.where(flip, -state.ball_vy, state.ball_vy)

        # Paddle line x = 1: where and when (fraction of the step) the ball reaches it.
        crosses = in_play & (x_free >= 1.0)
        t_cross = jnp.clip((1.0 - state.ball_x) / jnp.where(crosses, state.ball_vx, 1.0), 0.0, 1.0)
        y_cross, _ = fold(state.ball_y + state.ball_vy * t_cross)
        reach = params.paddle_half_height + params.ball_radius
        offset = (y_cross - py) / reach
        caught = crosses & (jnp.abs(offset) <= 1.0)
        missed = crosses & ~caught

        # Return after a catch: angle and speed from where the ball met the paddle.
        offset = jnp.clip(offset, -1.0, 1.0)
        angle = offset * params.max_bounce_angle
        speed = params.ball_speed * (1.0 + params.edge_speedup * jnp.abs(offset))
        vx_ret = -speed * jnp.cos(angle)
        vy_ret = speed * jnp.sin(angle)
        rest = 1.0 - t_cross
        x_ret = 1.0 + vx_ret * rest
        y_ret, flip_ret = fold(y_cross + vy_ret * rest)
        vy_ret = jnp.where(flip_ret, -vy_ret, vy_ret)

        bx = jnp.where(caught, x_ret, x_wall)
        by = jnp.where(caught, y_ret, y_wall)
        bvx = jnp.where(caught, vx_ret, vx_wall)
        bvy = jnp.where(caught, vy_ret, vy_wall)

        # Rounds: a miss or the catch cap ends one; the ball is gone for serve_delay obs.
        round_catches = state.round_catches + caught.astype(jnp.int32)
        capped = caught & (round_catches >= params.max_catches_per_round)
        round_over = missed | capped
        timer = jnp.where(round_over, params.serve_delay, jnp.maximum(state.serve_timer - 1, 0))
        serve_now = (timer == 0) & (round_over | ~in_play)
        sx, sy, svx, svy = ball
        keep = in_play & ~round_over  # ball keeps flying
        bx = jnp.where(serve_now, sx, jnp.where(keep, bx, state.ball_x))
        by = jnp.where(serve_now, sy, jnp.where(keep, by, state.ball_y))
        bvx = jnp.where(serve_now, svx, jnp.where(keep, bvx, state.ball_vx))
        bvy = jnp.where(serve_now, svy, jnp.where(keep, bvy, state.ball_vy))

        new_state = PongState(
            ball_x=bx,
            ball_y=by,
            ball_vx=bvx,
            ball_vy=bvy,
            paddle_y=py,
            paddle_v=pv,
            serve_timer=timer,
            round_catches=round_catches,  # reset below, after info has read it
            time=state.time + 1,
        )
        info = {
            "catch": caught,
            "miss": missed,
            "round_over": round_over,
            "capped": capped,
            "round_catches": round_catches,
            "max_steps": params.max_steps,
            "max_catches_per_round": params.max_catches_per_round,
        }
        new_state = new_state.replace(round_catches=jnp.where(round_over, 0, round_catches))
        done = self.is_terminal(new_state, params)
        info["discount"] = self.discount(new_state, params)
        reward = caught.astype(f32) - missed.astype(f32)
        return self.get_obs(new_state, params), new_state, reward, done, info

    def get_obs(self, state: PongState, params: PongParams | None = None, key: jax.Array | None = None) -> jax.Array:
        """float32 ``[5]``: ball x, ball y, paddle y, `OPPONENT_Y`, no-ball flag (all in [0, 1])."""
        in_play = state.serve_timer == 0
        zero = jnp.zeros_like(state.ball_x)
        return jnp.stack([
            jnp.where(in_play, state.ball_x, zero),
            jnp.where(in_play, state.ball_y, zero),
            state.paddle_y,
            jnp.full_like(state.ball_x, OPPONENT_Y),
            jnp.where(in_play, zero, jnp.ones_like(zero)),
        ], axis=-1).astype(jnp.float32)

    def is_terminal(self, state: PongState, params: PongParams) -> jax.Array:
        return state.time >= params.max_steps

    def discount(self, state: PongState, params: PongParams) -> jax.Array:
        return jnp.where(self.is_terminal(state, params), 0.0, 1.0).astype(jnp.float32)

    @property
    def name(self) -> str:
        return "SinglePlayerPong-v0"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: PongParams | None = None) -> Discrete:
        return Discrete(NUM_ACTIONS)

    def observation_space(self, params: PongParams | None = None) -> Box:
        return Box(0.0, 1.0, (OBS_DIM,), jnp.float32)

    def state_space(self, params: PongParams | None = None) -> Dict:
        big = np.float32(np.inf)
        max_steps = int(self.config.max_steps if params is None else params.max_steps)
        return Dict({
            "ball_x": Box(0.0, 1.0, (), jnp.float32),
            "ball_y": Box(0.0, 1.0, (), jnp.float32),
            "ball_vx": Box(-big, big, (), jnp.float32),
            "ball_vy": Box(-big, big, (), jnp.float32),
            "paddle_y": Box(0.0, 1.0, (), jnp.float32),
            "paddle_v": Box(-big, big, (), jnp.float32),
            "serve_timer": Discrete(int(self.config.serve_delay) + 1),
            "round_catches": Discrete(int(self.config.max_catches_per_round) + 1),
            "time": Discrete(max_steps + 1),
        })
