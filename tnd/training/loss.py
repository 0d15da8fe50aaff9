"""Behavior-cloning loss: cross-entropy on the expert's action, with class balancing.

The expert mostly holds still or keeps one direction, so labels are imbalanced. With
``class_balance="weight"`` each step's cross-entropy is weighted by the inverse frequency
of its label (normalised so the weights average to 1 over the dataset), which keeps the
loss scale comparable to the unweighted one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tnd.data.windows import label_frequencies


def class_weights(actions: np.ndarray, num_actions: int, mode: str) -> np.ndarray:
    """Per-class loss weights ``[A]`` float32: ones unless ``mode == "weight"``.

    Weighted mode: ``w_c = 1 / (A_seen * freq_c)``, so ``sum_c freq_c * w_c = 1``; classes
    never seen get weight 0.
    """
    if mode != "weight":
        return np.ones(num_actions, np.float32)
    freq = label_frequencies(actions, num_actions)
    seen = int((freq > 0).sum())
    return np.where(freq > 0, 1.0 / (max(seen, 1) * np.maximum(freq, 1e-12)), 0.0).astype(np.float32)


def cross_entropy(
    logits: jax.Array, labels: jax.Array, weights: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Weighted mean cross-entropy and plain accuracy.

    logits ``[B, T, A]``, labels ``[B, T]`` int, weights ``[A]``. Returns scalars
    ``(loss, accuracy)``; the loss is ``sum(w_y * ce) / sum(w_y)``.
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    w = weights[labels]
    loss = jnp.sum(w * ce) / jnp.maximum(jnp.sum(w), 1e-8)
    accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == labels)
    return loss, accuracy
