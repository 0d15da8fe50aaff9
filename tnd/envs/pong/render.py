"""RGB frames of single-player Pong and an animation writer (GIF, or MP4 with imageio-ffmpeg).

`render_frame` is pure ``jnp`` (jit/vmap-able): each pixel is mapped back to court
coordinates and painted by where it falls. Layout, in court units (the court is the unit
square, ``y`` downward): grey walls of thickness `WALL` above, below and left of the
court; the agent's green paddle just right of the paddle line ``x = 1``; the ball a white
square of side ``2 * ball_radius`` (hidden while no ball is in play). A thin bar along the
bottom wall grows with the catches in the current round (full width = the catch cap).
"""

from __future__ import annotations

import importlib.util
import os
import warnings

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from tnd.envs.pong.config import PongParams
from tnd.envs.pong.physics import PongState

WALL = 0.04  # wall thickness, court units
PADDLE_WIDTH = 0.04
BACKGROUND = (20, 24, 32)
WALL_COLOUR = (150, 150, 150)
PADDLE_COLOUR = (92, 186, 92)
BALL_COLOUR = (236, 236, 236)
ROUND_BAR_COLOUR = (214, 140, 60)

ANIMATION_SUFFIXES = (".gif", ".mp4")
MP4_PLUGINS = ("imageio_ffmpeg", "av")  # either one lets imageio write .mp4
RENDER_CHUNK = 256  # frames drawn per jitted call
PROGRESS_DELAY = 1.0  # seconds before a progress bar appears (quick writes show none)
MP4_BLOCK = 16  # MP4 frames are edge-padded to multiples of this (imageio-ffmpeg would resize them otherwise)


class AnimationError(ValueError):
    """An animation path this machine cannot write (unknown suffix, no MP4 plugin)."""


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


_render_batch = jax.jit(jax.vmap(render_frame, (0, None, None)), static_argnums=2)


def render_frames(states: PongState, params: PongParams, pixels_per_unit: int = 160, chunk: int = RENDER_CHUNK) -> np.ndarray:
    """A time-stacked state (leaves ``[T]``) -> uint8 frames ``[T, H, W, 3]`` (NumPy).

    ``chunk`` frames per jitted call: device memory stays bounded for long animations, and
    at most two batch shapes are compiled (a full chunk and the remainder).
    """
    total = int(jax.tree.leaves(states)[0].shape[0])
    parts = [np.zeros((0, *frame_shape(pixels_per_unit), 3), np.uint8)]
    for rows in (slice(start, start + int(chunk)) for start in range(0, total, int(chunk))):
        part = jax.tree.map(lambda x, rows=rows: x[rows], states)
        parts.append(np.asarray(jax.device_get(_render_batch(part, params, pixels_per_unit))))
    return np.concatenate(parts)


def check_animation_path(path: str | os.PathLike) -> str:
    """The lower-case suffix of ``path`` if it can be written here, else `AnimationError`.

    Cheap, so callers check before playing and rendering anything: ``.gif`` always works,
    ``.mp4`` needs ``imageio-ffmpeg`` (or ``av``) installed.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise AnimationError(f"Unsupported animation format '{suffix}' for {path}: use .gif or .mp4.")
    if suffix == ".mp4" and not any(importlib.util.find_spec(name) for name in MP4_PLUGINS):
        raise AnimationError(f"Writing {path} needs an MP4 plugin for imageio: pip install imageio-ffmpeg, or write a .gif.")
    return suffix


def pad_to_multiple(frames: np.ndarray, block: int) -> np.ndarray:
    """Frames ``[T, H, W, C]`` edge-padded at the bottom/right so that H and W divide by ``block``."""
    height, width = frames.shape[1:3]
    pad = ((0, 0), (0, -height % block), (0, -width % block), (0, 0))
    return np.pad(frames, pad, mode="edge") if any(p[1] for p in pad) else frames


def write_gif(frames: np.ndarray, path: str, fps: int, *, progress: bool = False) -> None:
    """Frames ``[T, H, W, 3]`` uint8 -> looping GIF (the bytes ``imageio.v3.imwrite`` writes).

    Each frame's adaptive 256-colour palette is computed here, under a progress bar: that
    conversion is nearly all of a GIF's writing time (Pillow would do it inside ``save``).
    Identical consecutive frames are merged by Pillow (their durations add up).
    """
    bar = tqdm(frames, desc="write gif", unit="frame", disable=not progress, delay=PROGRESS_DELAY)
    images = [Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE) for frame in bar]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)


def write_animation(frames: np.ndarray, path: str | os.PathLike, fps: int = 30, *, progress: bool = False) -> str:
    """Writes frames ``[T, H, W, 3]`` uint8 as ``.gif`` (always available) or ``.mp4``.

    MP4 needs the ``imageio-ffmpeg`` (or ``av``) package; without it, or for another
    suffix, an `AnimationError` (a ``ValueError``) says so in one line. ``progress``: a bar
    over the frames while a GIF is encoded (shown only when that takes a while). Returns
    the path written.
    """
    path = os.fspath(path)
    suffix = check_animation_path(path)
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"frames must be [T, H, W, 3] uint8 with T >= 1, got shape {frames.shape}.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if suffix == ".gif":
        write_gif(frames, path, fps, progress=progress)
    else:
        try:
            with warnings.catch_warnings():  # ffmpeg runs as a subprocess (fork + exec): JAX's fork warning does not apply
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                iio.imwrite(path, pad_to_multiple(frames, MP4_BLOCK), fps=fps, codec="libx264")
        except OSError as error:  # a plugin is installed but cannot write this file
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise AnimationError(
                f"Writing {path} failed ({first}): pip install imageio-ffmpeg, or write a .gif."
            ) from error
    return path
