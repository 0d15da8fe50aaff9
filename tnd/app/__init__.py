"""The application layer: whole experiments and sweeps from overrides, above every library layer.

    from tnd.app import load_spec, run_experiment, run_seeds
    spec = load_spec(["experiment=smoke", "model=lstm"])        # what `tnd-train <overrides>` trains
    summary = run_experiment(spec, "runs/lstm")                 # what tnd-train does
    summaries = run_seeds(spec, [0, 1, 2], ["runs/lstm/seed=0", ...])  # tnd-train seeds=[0,1,2]: one program
    metrics = evaluate_checkpoint("runs/lstm", eval_spec)       # what tnd-eval does

    from tnd.app import sweep                                   # what tnd-table does, from a notebook
    plan = sweep.plan_sweep(["model=lstm,rnn", "seed=0,1", "experiment=smoke"])
    sweep.run_sweep(plan, "runs/table")                         # in this process (or launch=... a multirun)
    table = sweep.sweep_table("runs/table")

`tnd.app.render` draws a run's agent playing (``tnd-render``); `tnd.app.robustness` measures
finished runs again under perturbations, blind, and for smoothness (``tnd-table --robustness``,
``--memory``). Nothing in the library imports this package; the entry points in
``experiments/`` and the notebooks do. Names are imported on first use, so a command that
only needs `tnd.app.spec` does not load the models.
"""

import importlib

_EXPORTS = {
    "ExperimentError": "tnd.app.spec", "build_agent": "tnd.app.experiment",
    "collect_dataset": "tnd.app.datasets", "config_hash": "tnd.app.experiment",
    "run_experiment": "tnd.app.experiment", "run_seeds": "tnd.app.experiment",
    "evaluate_checkpoint": "tnd.app.restore", "restore_model": "tnd.app.restore",
    "SpecError": "tnd.app.spec", "load_spec": "tnd.app.spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tnd.app' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
