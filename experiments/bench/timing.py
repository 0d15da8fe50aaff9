"""Timing shared by the suites: medians of repeated calls, and a training step to time.

Figures are medians after untimed warm-up calls (the first compiles). Several calls timed
together run in turn, round by round, so that drift on a shared machine hits all alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jax
import optax
from flax import nnx


def median_seconds(calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median wall seconds of each zero-argument call (results waited on with ``block_until_ready``)."""
    for call in calls.values():
        for _ in range(warmup):
            jax.block_until_ready(call())
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(max(1, repeats)):
        for name, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def training_call(
    model: nnx.Module, batch: int, seq_len: int, obs_shape: tuple[int, ...], num_actions: int,
    reset_probability: float = 0.0,
) -> Callable[[], object]:
    """One jit-compiled forward + backward of the cross-entropy over a random ``[B, T]`` window.

    The window's episodes restart with ``reset_probability`` per step (reset masks).
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    kx, kl, kr = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (batch, seq_len) + tuple(obs_shape))
    labels = jax.random.randint(kl, (batch, seq_len), 0, num_actions)
    resets = jax.random.bernoulli(kr, reset_probability, (batch, seq_len))

    train_grads = jax.jit(cross_entropy_grads(graphdef))
    return lambda: train_grads(params, rest, x, resets, labels)


def cross_entropy_grads(graphdef: nnx.GraphDef) -> Callable[..., object]:
    """``grads(params, rest, x, resets, labels) -> (loss, d loss / d params)``: the
    cross-entropy of a split model over ``[B, T]`` windows (the step every suite times)."""

    def grads(params, rest, x, resets, labels):
        def loss_fn(p):
            _, logits = nnx.merge(graphdef, p, rest)(x, resets)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        return jax.value_and_grad(loss_fn)(params)

    return grads
