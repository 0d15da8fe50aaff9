"""The ball and the paddle of single-player Pong: the state of one game and how one step
moves it (the rules are in the `tnd.envs.pong.env` docstring).

Every function works on the scalars of one game (``vmap`` adds a games axis) and is
branch-free (``jnp.where``): `fold` reflects a coordinate between two walls, `serve` draws a
new ball, `crossing_y` predicts where the ball meets the paddle line (the expert's aim);
`move_paddle`, `fly_ball`, `meet_paddle_line`, `return_ball`, `end_rounds` and `next_ball`
are the pieces of `SinglePlayerPong.step_env`, in that order.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from tnd.envs.pong.config import DOWN, UP, PongParams

Ball = tuple[jax.Array, jax.Array, jax.Array, jax.Array]  # (x, y, vx, vy), float32 scalars per game


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


def move_paddle(state: PongState, action: jax.Array, params: PongParams) -> tuple[jax.Array, jax.Array]:
    """The paddle after ``action``: ``(y, v)``; momentum with friction, stopped dead at the walls."""
    f32 = jnp.float32
    direction = jnp.where(action == UP, f32(-1.0), jnp.where(action == DOWN, f32(1.0), f32(0.0)))
    pv = (1.0 - params.paddle_friction) * state.paddle_v + params.paddle_accel * direction
    py_free = state.paddle_y + pv
    py = jnp.clip(py_free, params.paddle_half_height, 1.0 - params.paddle_half_height)
    pv = jnp.where(py == py_free, pv, f32(0.0))
    return py, pv


def fly_ball(state: PongState) -> Ball:
    """The ball after one step of free flight, the left, top and bottom walls folded in."""
    x_free = state.ball_x + state.ball_vx
    hit_left = x_free < 0.0
    x_wall = jnp.abs(x_free)
    vx_wall = jnp.where(hit_left, -state.ball_vx, state.ball_vx)
    y_wall, flip = fold(state.ball_y + state.ball_vy)
    vy_wall = jnp.where(flip, -state.ball_vy, state.ball_vy)
    return x_wall, y_wall, vx_wall, vy_wall


class Contact(NamedTuple):
    """The ball at the paddle line ``x = 1`` during one step (scalars per game)."""

    crosses: jax.Array  # bool: a ball in play reaches the line
    caught: jax.Array  # bool: ... and meets the paddle
    missed: jax.Array  # bool: ... and passes it
    time: jax.Array  # float32 in [0, 1]: the fraction of the step at which it reaches the line
    y: jax.Array  # float32: its height there
    offset: jax.Array  # float32: (y - paddle y) / (paddle half height + ball radius); |offset| <= 1 is a catch


def meet_paddle_line(state: PongState, paddle_y: jax.Array, params: PongParams) -> Contact:
    """Where and when (fraction of the step) the ball reaches the paddle line, and whether the
    paddle, already moved to ``paddle_y``, catches it."""
    in_play = state.serve_timer == 0
    x_free = state.ball_x + state.ball_vx
    crosses = in_play & (x_free >= 1.0)
    t_cross = jnp.clip((1.0 - state.ball_x) / jnp.where(crosses, state.ball_vx, 1.0), 0.0, 1.0)
    y_cross, _ = fold(state.ball_y + state.ball_vy * t_cross)
    reach = params.paddle_half_height + params.ball_radius
    offset = (y_cross - paddle_y) / reach
    caught = crosses & (jnp.abs(offset) <= 1.0)
    missed = crosses & ~caught
    return Contact(crosses, caught, missed, t_cross, y_cross, offset)


def return_ball(contact: Contact, params: PongParams) -> Ball:
    """The ball sent back by a catch: angle and speed from where it met the paddle, flown for
    the rest of the step (top and bottom walls folded in)."""
    offset = jnp.clip(contact.offset, -1.0, 1.0)
    angle = offset * params.max_bounce_angle
    speed = params.ball_speed * (1.0 + params.edge_speedup * jnp.abs(offset))
    vx_ret = -speed * jnp.cos(angle)
    vy_ret = speed * jnp.sin(angle)
    rest = 1.0 - contact.time
    x_ret = 1.0 + vx_ret * rest
    y_ret, flip_ret = fold(contact.y + vy_ret * rest)
    vy_ret = jnp.where(flip_ret, -vy_ret, vy_ret)
    return x_ret, y_ret, vx_ret, vy_ret


class RoundUpdate(NamedTuple):
    """The round bookkeeping of one step (scalars per game)."""

    catches: jax.Array  # int32: catches in the round, this step's included (not yet reset)
    capped: jax.Array  # bool: the catch cap ended the round
    over: jax.Array  # bool: the round ended (a miss or the cap)
    serve_timer: jax.Array  # int32: observations left without a ball
    serve_now: jax.Array  # bool: a new ball is served this step


def end_rounds(state: PongState, contact: Contact, params: PongParams) -> RoundUpdate:
    """Rounds: a miss or the catch cap ends one; the ball is then gone for ``serve_delay``
    observations and served when the timer reaches 0."""
    in_play = state.serve_timer == 0
    round_catches = state.round_catches + contact.caught.astype(jnp.int32)
    capped = contact.caught & (round_catches >= params.max_catches_per_round)
    round_over = contact.missed | capped
    timer = jnp.where(round_over, params.serve_delay, jnp.maximum(state.serve_timer - 1, 0))
    serve_now = (timer == 0) & (round_over | ~in_play)
    return RoundUpdate(round_catches, capped, round_over, timer, serve_now)


def next_ball(state: PongState, flown: Ball, served: Ball, rounds: RoundUpdate) -> Ball:
    """The ball at the end of the step: the ``served`` one on a serve, the ``flown`` one while
    its round goes on, else where it was (not in play, not observed)."""
    keep = (state.serve_timer == 0) & ~rounds.over  # ball keeps flying
    current = (state.ball_x, state.ball_y, state.ball_vx, state.ball_vy)
    return tuple(
        jnp.where(rounds.serve_now, s, jnp.where(keep, f, c)) for s, f, c in zip(served, flown, current)
    )
