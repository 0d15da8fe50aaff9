"""The application layer: whole experiments from plain configs, above every library layer.

    from tnd.app import run_experiment, evaluate_checkpoint, restore_model
    summary = run_experiment(spec, "runs/lstm")          # what tnd-train does
    summaries = run_seeds(spec, [0, 1, 2], ["runs/lstm/seed=0", ...])  # tnd-train seeds=[0,1,2]: one program
    metrics = evaluate_checkpoint("runs/lstm", eval_spec)  # what tnd-eval does

`tnd.app.render` draws a run's agent playing (``tnd-render``); `tnd.app.robustness` measures
finished runs again under perturbations, blind, and for smoothness (``tnd-table --robustness``,
``--memory``). Nothing in the library
imports this package; the entry points in ``experiments/`` and the notebooks do.
"""

from tnd.app.experiment import ExperimentError, build_agent, collect_dataset, config_hash, run_experiment, run_seeds
from tnd.app.restore import evaluate_checkpoint, restore_model

__all__ = [
    "ExperimentError", "build_agent", "collect_dataset", "config_hash", "evaluate_checkpoint", "restore_model",
    "run_experiment", "run_seeds",
]
