"""Observation encoders and the action head: the same for every harness model.

* `MLPEncoder`   object features ``[B, D]`` -> ``[B, F]``
* `ConvEncoder`  one grey frame ``[B, H, W]``, or k stacked frames ``[B, k, H, W]`` (values in
                 [0, 1]; channels first, as `tnd.envs.atari_pong` stacks them) -> ``[B, F]``
* `make_io`      builds both the encoder matching ``obs_shape`` and the linear action head.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class MLPEncoder(nnx.Module):
    """Two-layer MLP on object features."""

    def __init__(self, in_features: int, features: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(in_features, features, rngs=rngs)
        self.out = nnx.Linear(features, features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return nnx.gelu(self.out(nnx.gelu(self.hidden(x))))


class ConvEncoder(nnx.Module):
    """Small Atari-style conv net on a grey frame ``[B, H, W]`` or ``channels`` stacked frames
    ``[B, channels, H, W]`` (the frames become the first convolution's input channels)."""

    def __init__(self, frame_shape: tuple[int, int], features: int, *, rngs: nnx.Rngs, channels: int = 1):
        height, width = frame_shape
        self.channels = channels
        self.conv1 = nnx.Conv(channels, 16, kernel_size=(8, 8), strides=(4, 4), padding="VALID", rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, kernel_size=(4, 4), strides=(2, 2), padding="VALID", rngs=rngs)
        h = ((height - 8) // 4 + 1 - 4) // 2 + 1
        w = ((width - 8) // 4 + 1 - 4) // 2 + 1
        if h <= 0 or w <= 0:
            raise ValueError(f"Frames of shape {frame_shape} are too small for the conv encoder (need >= 20x20).")
        self.out = nnx.Linear(h * w * 32, features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        frames = x[..., None] if self.channels == 1 and x.ndim == 3 else jnp.moveaxis(x, -3, -1)  # [B, H, W, C]
        y = nnx.relu(self.conv1(frames))
        y = nnx.relu(self.conv2(y))
        return nnx.gelu(self.out(y.reshape(y.shape[0], -1)))


def make_encoder(obs_shape: tuple[int, ...], features: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """The encoder for an observation shape: ``(D,)`` -> MLP, ``(H, W)`` or stacked frames
    ``(k, H, W)`` -> conv."""
    if len(obs_shape) == 1:
        return MLPEncoder(obs_shape[0], features, rngs=rngs)
    if len(obs_shape) == 2:
        return ConvEncoder(obs_shape, features, rngs=rngs)
    if len(obs_shape) == 3:
        return ConvEncoder(obs_shape[1:], features, rngs=rngs, channels=obs_shape[0])
    raise ValueError(f"Unsupported observation shape {obs_shape}: expected (D,) objects, (H, W) pixels or "
                     "(k, H, W) stacked frames.")


def make_io(
    obs_shape: tuple[int, ...], features: int, core_out: int, num_actions: int, *, rngs: nnx.Rngs
) -> tuple[nnx.Module, nnx.Module]:
    """Returns ``(encoder, head)``: the shared observation encoder and linear action head."""
    return make_encoder(obs_shape, features, rngs=rngs), nnx.Linear(core_out, num_actions, rngs=rngs)
