"""The training settings checked before anything is built: one readable error per invalid one."""

from __future__ import annotations

import math

from tnd.data.windows import CLASS_BALANCE
from tnd.training.config import TrainSpec


class TrainSpecError(ValueError):
    """An invalid training setting (non-positive size, unknown choice)."""


def validate_train_spec(spec: TrainSpec) -> None:
    """One readable error for each invalid setting."""
    for name in ("steps", "batch_size", "window"):
        if int(getattr(spec, name)) <= 0:
            raise TrainSpecError(f"train.{name} must be positive, got {getattr(spec, name)}.")
    if not spec.lr > 0:
        raise TrainSpecError(f"train.lr must be positive, got {spec.lr}.")
    for name in ("warmup_steps", "log_every", "eval_every", "checkpoint_every"):
        if int(getattr(spec, name)) < 0:
            raise TrainSpecError(f"train.{name} must be >= 0, got {getattr(spec, name)}.")
    for name in ("weight_decay", "clip_norm"):
        value = getattr(spec, name)
        if not (math.isfinite(value) and value >= 0):
            raise TrainSpecError(f"train.{name} must be a finite number >= 0, got {value}.")
    if not (math.isfinite(spec.min_lr_ratio) and 0 <= spec.min_lr_ratio <= 1):
        raise TrainSpecError(f"train.min_lr_ratio must lie in [0, 1] (the final fraction of train.lr), got {spec.min_lr_ratio}.")
    if not (math.isfinite(spec.lr)):
        raise TrainSpecError(f"train.lr must be finite, got {spec.lr}.")
    if int(spec.max_to_keep) < 1:
        raise TrainSpecError(f"train.max_to_keep must be >= 1 (checkpoints kept for resuming), got {spec.max_to_keep}.")
    if int(spec.warmup_steps) > int(spec.steps):
        raise TrainSpecError(f"train.warmup_steps ({spec.warmup_steps}) must not exceed train.steps ({spec.steps}).")
    if not spec.param_limit > 0:
        raise TrainSpecError(f"train.param_limit must be positive, got {spec.param_limit}.")
    if spec.class_balance not in CLASS_BALANCE:
        raise TrainSpecError(
            f"Unknown train.class_balance '{spec.class_balance}'. Valid choices: {', '.join(CLASS_BALANCE)}."
        )
