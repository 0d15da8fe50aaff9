"""The jit-compiled behavior-cloning train step on ``nnx.split`` state.

The model is split once into ``(graphdef, params, rest)`` with ``nnx.Param`` first
(RNG state holds uint32 key arrays, which must not be differentiated). One step:

1. draws the batch's window starts from ``fold_in(data_key, step)`` (pure in (seed, step)),
2. gathers the windows from the device-resident dataset (no host input pipeline),
3. differentiates ``cross_entropy + model.regularization()`` with respect to the
   ``nnx.Param`` state only (the hook, when the model has
   one, e.g. the TND edge-gate sparsity penalty),
4. applies the optax update, but keeps the old state when the loss or the gradient norm is
   non-finite, or when the *updated* parameters would be non-finite or exceed
   ``param_limit`` in absolute value (``ok`` = false), so a NaN or a diverged update never
   reaches parameters or checkpoints (``params_ok`` tells which check failed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from tnd.data.windows import gather_windows, sample_starts
from tnd.training.loss import cross_entropy


def model_loss(model: nnx.Module, x, labels, resets, weights) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Total loss and its parts for one batch of windows."""
    _, logits = model(x, resets)
    ce, accuracy = cross_entropy(logits, labels, weights)
    reg = jnp.zeros((), jnp.float32)
    if callable(getattr(model, "regularization", None)):
        reg = jnp.asarray(model.regularization(), jnp.float32)
    return ce + reg, {"ce": ce, "regularization": reg, "accuracy": accuracy}


def make_train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    *,
    batch_size: int,
    window: int,
    param_limit: float = 1.0e6,
    batch_sharding: Any = None,
    donate: bool | None = None,
    stacked: bool = False,
) -> Callable[..., Any]:
    """Returns ``step_fn(params, rest, opt_state, arrays, weights, data_key, step)``.

    -> ``(params, rest, opt_state, metrics)`` with scalar metrics ``loss, ce,
    regularization, accuracy, grad_norm, lr, ok, params_ok, param_max``. ``arrays`` is `Windows.arrays()`,
    ``weights`` the ``[A]`` class weights, ``step`` an int32 scalar (the batch index).
    Buffers are donated off-CPU (XLA's CPU backend cannot use donations). With
    ``batch_sharding`` (`tnd.training.parallel`) the batch is split over its devices.

    ``stacked``: seeds in one program (PureJaxRL's pattern). ``params``, ``rest``,
    ``opt_state`` and ``data_key`` carry a leading seed axis ``[S]`` and the step is
    ``jax.vmap``-ed over it; the dataset, class weights and step index are shared. Every
    metric then has shape ``[S]``, and each seed's ``ok`` guards only that seed's update.
    """
    if donate is None:
        donate = jax.default_backend() != "cpu"

    def step_fn(params, rest, opt_state, arrays, weights, data_key, step):
        key = jax.random.fold_in(data_key, step)
        starts = sample_starts(arrays, key, batch_size)
        x, labels, resets = gather_windows(arrays, starts, window)
        if batch_sharding is not None:  # data parallel: each device takes its share of the batch
            x, labels, resets = jax.lax.with_sharding_constraint((x, labels, resets), batch_sharding)

        # nnx.value_and_grad (not jax's) so that RNG streams (dropout) may advance inside
        # the differentiated function without a trace-context error (jax.grad would reject the RNG update).
        model = nnx.merge(graphdef, params, rest)

        def loss_fn(m):
            return model_loss(m, x, labels, resets, weights)

        grad_fn = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, nnx.Param), has_aux=True)
        (loss, parts), grads = grad_fn(model)
        _, _, new_rest = nnx.split(model, nnx.Param, ...)
        grad_norm = optax.tree.norm(grads)
        updates, new_opt = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        param_max = jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree.leaves(new_params)]))
        params_ok = jnp.isfinite(param_max) & (param_max <= param_limit)
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & params_ok
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        metrics = {"loss": loss, "grad_norm": grad_norm, "lr": schedule(step), "ok": ok, "params_ok": params_ok,
                   "param_max": param_max, **parts}
        return keep(new_params, params), keep(new_rest, rest), keep(new_opt, opt_state), metrics

    if stacked:
        step_fn = jax.vmap(step_fn, in_axes=(0, 0, 0, None, None, 0, None))
    return jax.jit(step_fn, donate_argnums=(0, 1, 2) if donate else ())
