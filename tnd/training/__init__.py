"""Behavior cloning: loss, optimizer, train step, checkpoints, the train loop, run configs.

    from tnd.training import TrainSpec, train
    result = train(model, windows, TrainSpec(steps=100), seed=0, class_weights=w, run_dir="runs/x")
    results = train_seeds([SeedRun(m, seed, f"runs/s{seed}") for ...], windows, spec, class_weights=w)  # one program

The whole experiment (data, model, training, evaluation, summary) is `tnd.app`.
"""

from tnd.training.checkpoint import CheckpointError, Checkpointer
from tnd.training.config import (
    DataSpec, EnvSpec, EvalSpec, ExperimentSpec, GraphSpec, ModelSpec, TrainSpec,
)
from tnd.training.loop import (
    SeedRun, NonFiniteLossError, TrainingInterrupted, TrainResult, TrainSpecError, train, train_seeds,
)

__all__ = [
    "CheckpointError", "Checkpointer", "DataSpec", "EnvSpec", "EvalSpec", "ExperimentSpec", "GraphSpec",
    "SeedRun", "ModelSpec", "NonFiniteLossError", "TrainResult", "TrainSpec", "TrainSpecError", "TrainingInterrupted",
    "train", "train_seeds",
]
