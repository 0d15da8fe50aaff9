"""Observation encoders and the action head: the same for every harness model.

* `MLPEncoder`   object features ``[B, D]`` -> ``[B, F]``
* `ConvEncoder`  one grey frame ``[B, H, W]`` (values in [0, 1]) -> ``[B, F]``
* `make_io`      builds both the encoder matching ``obs_shape`` and the linear action head.
"""

from __future__ import annotations

import jax
from flax import nnx


class MLPEncoder(nnx.Module):
    """Two-layer MLP on object features."""

    def __init__(self, in_features: int, features: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(in_features, features, rngs=rngs)
        self.out = nnx.Linear(features, features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return nnx.gelu(self.out(nnx.gelu(self.hidden(x))))


class ConvEncoder(nnx.Module):
    """Small Atari-style conv net on a single grey frame ``[B, H, W]``."""

    def __init__(self, frame_shape: tuple[int, int], features: int, *, rngs: nnx.Rngs):
        height, width = frame_shape
        self.conv1 = nnx.Conv(1, 16, kernel_size=(8, 8), strides=(4, 4), padding="VALID", rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, kernel_size=(4, 4), strides=(2, 2), padding="VALID", rngs=rngs)
        h = ((height - 8) // 4 + 1 - 4) // 2 + 1
        w = ((width - 8) // 4 + 1 - 4) // 2 + 1
        if h <= 0 or w <= 0:
            raise ValueError(f"Frames of shape {frame_shape} are too small for the conv encoder (need >= 20x20).")
        self.out = nnx.Linear(h * w * 32, features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = nnx.relu(self.conv1(x[..., None]))
        y = nnx.relu(self.conv2(y))
        return nnx.gelu(self.out(y.reshape(y.shape[0], -1)))


def make_encoder(obs_shape: tuple[int, ...], features: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """The encoder for an observation shape: ``(D,)`` -> MLP, ``(H, W)`` -> conv."""
    if len(obs_shape) == 1:
        return MLPEncoder(obs_shape[0], features, rngs=rngs)
    if len(obs_shape) == 2:
        return ConvEncoder(obs_shape, features, rngs=rngs)
    raise ValueError(f"Unsupported observation shape {obs_shape}: expected (D,) objects or (H, W) pixels.")


def make_io(
    obs_shape: tuple[int, ...], features: int, core_out: int, num_actions: int, *, rngs: nnx.Rngs
) -> tuple[nnx.Module, nnx.Module]:
    """Returns ``(encoder, head)``: the shared observation encoder and linear action head."""
    return make_encoder(obs_shape, features, rngs=rngs), nnx.Linear(core_out, num_actions, rngs=rngs)
