"""RGB frames of single-player Pong and an animation writer (GIF, or MP4 with imageio-ffmpeg).

`render_frame` is pure ``jnp`` (jit/vmap-able): each pixel is mapped back to court
coordinates and painted by where it falls. Layout, in court units (the court is the unit
square, ``y`` downward): grey walls of thickness `WALL` above, below and left of the
court; the agent's green paddle just right of the paddle line ``x = 1``; the ball a white
square of side ``2 * ball_radius`` (hidden while no ball is in play). A thin bar along the
bottom wall grows with the catches in the current round (full width = the catch cap).
"""

from __future__ import annotations

import os

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np

from tnd.envs.pong import PongParams, PongState

WALL = 0.04  # wall thickness, court units
PADDLE_WIDTH = 0.04
BACKGROUND = (20, 24, 32)
WALL_COLOUR = (150, 150, 150)
PADDLE_COLOUR = (92, 186, 92)
BALL_COLOUR = (236, 236, 236)
ROUND_BAR_COLOUR = (214, 140, 60)


def frame_shape(pixels_per_unit: int = 160) -> tuple[int, int]:
    """``(height, width)`` of a frame at ``pixels_per_unit`` pixels per court unit."""
    return (int(round((1 + 2 * WALL) * pixels_per_unit)), int(round((1 + WALL + PADDLE_WIDTH) * pixels_per_unit)))


def render_frame(state: PongState, params: PongParams, pixels_per_unit: int = 160) -> jax.Array:
    """One game's state -> uint8 RGB frame ``[H, W, 3]`` (see `frame_shape`)."""
    height, width = frame_shape(pixels_per_unit)
    scale = float(pixels_per_unit)
    y = (jnp.arange(height, dtype=jnp.float32)[:, None] + 0.5) / scale - WALL
    x = (jnp.arange(width, dtype=jnp.float32)[None, :] + 0.5) / scale - WALL
    wall = (y < 0) | (y > 1) | (x < 0)
    paddle = (x >= 1) & (x <= 1 + PADDLE_WIDTH) & (jnp.abs(y - state.paddle_y) <= params.paddle_half_height)
    radius = jnp.maximum(params.ball_radius, 0.5 / scale)
    ball = (state.serve_timer == 0) & (jnp.abs(x - state.ball_x) <= radius) & (jnp.abs(y - state.ball_y) <= radius)
    progress = state.round_catches.astype(jnp.float32) / params.max_catches_per_round.astype(jnp.float32)
    round_bar = (y > 1 + WALL / 3) & (y < 1 + 2 * WALL / 3) & (x >= 0) & (x <= progress)

    frame = jnp.broadcast_to(jnp.asarray(BACKGROUND, jnp.uint8), (height, width, 3))
    for mask, colour in ((wall, WALL_COLOUR), (round_bar, ROUND_BAR_COLOUR), (paddle, PADDLE_COLOUR), (ball, BALL_COLOUR)):
        frame = jnp.where(mask[..., None], jnp.asarray(colour, jnp.uint8), frame)
    return frame


def render_frames(states: PongState, params: PongParams, pixels_per_unit: int = 160) -> np.ndarray:
    """A time-stacked state (leaves ``[T]``) -> uint8 frames ``[T, H, W, 3]`` (NumPy)."""
    frames = jax.jit(jax.vmap(render_frame, (0, None, None)), static_argnums=2)(states, params, pixels_per_unit)
    return np.asarray(jax.device_get(frames))


def write_animation(frames: np.ndarray, path: str | os.PathLike, fps: int = 30) -> str:
    """Writes frames ``[T, H, W, 3]`` uint8 as ``.gif`` (always available) or ``.mp4``.

    MP4 needs the ``imageio-ffmpeg`` (or ``av``) package; without it a `RuntimeError`
    says so. Returns the path written.
    """
    path = os.fspath(path)
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3] uint8, got shape {frames.shape}.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".gif":
        iio.imwrite(path, frames, duration=1000.0 / fps, loop=0)
    elif suffix == ".mp4":
        try:
            iio.imwrite(path, frames, fps=fps, codec="libx264")
        except Exception as error:  # no ffmpeg/av plugin: one readable error
            raise RuntimeError(
                f"Writing {path} needs an MP4 plugin for imageio: pip install imageio-ffmpeg (or write a .gif). ({error})"
            ) from error
    else:
        raise ValueError(f"Unsupported animation format '{suffix}' for {path}: use .gif or .mp4.")
    return path
