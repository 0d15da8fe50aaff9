"""Rendering single-player Pong to RGB frames and writing an animation."""

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tnd.envs.pong import SinglePlayerPong
from tnd.envs.pong.render import BALL_COLOUR, PADDLE_COLOUR, WALL, frame_shape, render_frame, render_frames, write_animation

PPU = 50  # pixels per court unit: small frames keep the test fast


def _state(**fields):
    env = SinglePlayerPong()
    _, state = env.reset_env(jax.random.key(0), env.default_params)
    return env.default_params, state.replace(**{k: jnp.asarray(v, getattr(state, k).dtype) for k, v in fields.items()})


def _pixel(x, y):
    return int((y + WALL) * PPU), int((x + WALL) * PPU)


def test_frame_shows_ball_paddle_and_walls_where_they_are():
    params, state = _state(ball_x=0.3, ball_y=0.6, paddle_y=0.25)
    frame = np.asarray(render_frame(state, params, PPU))
    assert frame.shape == frame_shape(PPU) + (3,) and frame.dtype == np.uint8
    assert tuple(frame[_pixel(0.3, 0.6)]) == BALL_COLOUR
    assert tuple(frame[_pixel(1.02, 0.25)]) == PADDLE_COLOUR
    assert tuple(frame[_pixel(1.02, 0.6)]) != PADDLE_COLOUR
    assert tuple(frame[0, frame.shape[1] // 2]) != tuple(frame[_pixel(0.5, 0.5)])  # top wall
    hidden = np.asarray(render_frame(state.replace(serve_timer=jnp.int32(2)), params, PPU))
    assert tuple(hidden[_pixel(0.3, 0.6)]) != BALL_COLOUR


def test_render_frames_and_gif_round_trip(tmp_path):
    params, state = _state()
    states = jax.tree.map(lambda x: jnp.stack([x, x, x]), state)
    states = states.replace(ball_x=jnp.array([0.2, 0.4, 0.6], jnp.float32))  # GIF merges identical frames
    frames = render_frames(states, params, PPU)
    assert frames.shape == (3,) + frame_shape(PPU) + (3,)
    path = write_animation(frames, tmp_path / "pong.gif", fps=10)
    assert iio.imread(path).shape[0] == 3
    with pytest.raises(ValueError, match="use .gif or .mp4"):
        write_animation(frames, tmp_path / "pong.avi")
