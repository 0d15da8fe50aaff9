"""Behavior cloning: loss, optimizer, train step, checkpoints, the train loop, the pipeline.

    from tnd.training import ExperimentSpec, run_experiment
    summary = run_experiment(ExperimentSpec(), "runs/lstm")      # what tnd-train does
"""

from tnd.training.checkpoint import CheckpointError, Checkpointer
from tnd.training.config import (
    DataSpec, EnvSpec, EvalSpec, ExperimentSpec, GraphSpec, ModelSpec, TrainSpec,
)
from tnd.training.loop import NonFiniteLossError, TrainingInterrupted, TrainResult, TrainSpecError, train
from tnd.training.pipeline import ExperimentError, evaluate_checkpoint, restore_model, run_experiment

__all__ = [
    "CheckpointError", "Checkpointer", "DataSpec", "EnvSpec", "EvalSpec", "ExperimentError", "ExperimentSpec",
    "GraphSpec", "ModelSpec", "NonFiniteLossError", "TrainingInterrupted", "TrainResult", "TrainSpec",
    "TrainSpecError",
    "evaluate_checkpoint", "restore_model", "run_experiment", "train",
]
