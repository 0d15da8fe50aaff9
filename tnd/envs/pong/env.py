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
no divergence. The settings (`PongConfig`, `PongParams`, the action ids) are in
`tnd.envs.pong.config`, the state and the pieces of a step (paddle, ball, catch, rounds,
serve) in `tnd.envs.pong.physics`; this module is the env that puts them together.

``info`` of each step (all arrays): ``catch``, ``miss``, ``round_over``, ``capped`` (round
ended by the catch cap) as bool; ``round_catches`` int32 (catches in the current round,
or in the round that just ended); ``max_steps`` and ``max_catches_per_round`` (int32 caps);
``discount`` float32.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tnd.envs.pong.config import (
    DOWN,
    MAX_PERTURBATION_STEPS,
    NUM_ACTIONS,
    OBS_DIM,
    OPPONENT_Y,
    PERTURBATION_OPTIONS,
    STAY,
    UP,
    PongConfig,
    PongConfigError,
    PongParams,
    obs_shape,
    to_params,
)
from tnd.envs.pong.physics import (
    PongState,
    crossing_y,
    end_rounds,
    fly_ball,
    fold,
    meet_paddle_line,
    move_paddle,
    next_ball,
    return_ball,
    serve,
)
from tnd.envs.spaces import Box, Dict, Discrete

__all__ = [
    "COLLECT_STREAM", "DOWN", "EVAL_STREAM", "MAX_PERTURBATION_STEPS", "NUM_ACTIONS", "OBS_DIM", "OPPONENT_Y",
    "PERTURBATION_OPTIONS", "STAY", "UP", "PongConfig", "PongConfigError", "PongParams", "PongState",
    "SinglePlayerPong", "crossing_y", "fold", "game_seeds", "obs_shape", "serve", "to_params",
]

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
        py, pv = move_paddle(state, action, params)
        contact = meet_paddle_line(state, py, params)
        flown = tuple(jnp.where(contact.caught, r, w) for r, w in zip(return_ball(contact, params), fly_ball(state)))
        rounds = end_rounds(state, contact, params)
        bx, by, bvx, bvy = next_ball(state, flown, ball, rounds)
        new_state = PongState(
            ball_x=bx,
            ball_y=by,
            ball_vx=bvx,
            ball_vy=bvy,
            paddle_y=py,
            paddle_v=pv,
            serve_timer=rounds.serve_timer,
            round_catches=rounds.catches,  # reset below, after info has read it
            time=state.time + 1,
        )
        info = {
            "catch": contact.caught,
            "miss": contact.missed,
            "round_over": rounds.over,
            "capped": rounds.capped,
            "round_catches": rounds.catches,
            "max_steps": params.max_steps,
            "max_catches_per_round": params.max_catches_per_round,
        }
        new_state = new_state.replace(round_catches=jnp.where(rounds.over, 0, rounds.catches))
        done = self.is_terminal(new_state, params)
        info["discount"] = self.discount(new_state, params)
        reward = contact.caught.astype(f32) - contact.missed.astype(f32)
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
