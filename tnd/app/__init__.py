"""The application layer: whole experiments from plain configs, above every library layer.

    from tnd.app import run_experiment, evaluate_checkpoint, restore_model
    summary = run_experiment(spec, "runs/lstm")          # what tnd-train does
    metrics = evaluate_checkpoint("runs/lstm", eval_spec)  # what tnd-eval does

`tnd.app.render` draws a run's agent playing (``tnd-render``). Nothing in the library
imports this package; the entry points in ``experiments/`` and the notebooks do.
"""

from tnd.app.experiment import (
    ExperimentError, build_agent, collect_dataset, config_hash, evaluate_checkpoint, restore_model, run_experiment,
)

__all__ = [
    "ExperimentError", "build_agent", "collect_dataset", "config_hash", "evaluate_checkpoint", "restore_model",
    "run_experiment",
]
