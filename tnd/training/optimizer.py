"""The optimizer: AdamW with linear warm-up then cosine decay, after global-norm clipping."""

from __future__ import annotations

import optax


def make_schedule(lr: float, steps: int, warmup_steps: int, min_lr_ratio: float) -> optax.Schedule:
    """Linear warm-up from 0 to ``lr`` over ``warmup_steps``, cosine to ``lr*min_lr_ratio``."""
    warmup = max(0, min(int(warmup_steps), int(steps) - 1))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup > 0 else lr,
        peak_value=lr,
        warmup_steps=warmup,
        decay_steps=max(int(steps), warmup + 1),
        end_value=lr * min_lr_ratio,
    )


def make_optimizer(
    *, lr: float, steps: int, warmup_steps: int, min_lr_ratio: float, weight_decay: float, clip_norm: float
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Returns ``(tx, schedule)``: ``clip_by_global_norm`` (if ``clip_norm > 0``) then AdamW."""
    schedule = make_schedule(lr, steps, warmup_steps, min_lr_ratio)
    parts = []
    if clip_norm and clip_norm > 0:
        parts.append(optax.clip_by_global_norm(clip_norm))
    parts.append(optax.adamw(schedule, weight_decay=weight_decay))
    return optax.chain(*parts), schedule
