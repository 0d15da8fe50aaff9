"""Looking inside the dynamics: stability (Lyapunov exponents), activity, effective rank, plots.

Typical use in a notebook::

    from tnd import analysis
    lam = analysis.model_lyapunov(model, episodes)            # [E, 1] nats / step
    traj = analysis.state_trajectory(model, episodes)          # .flat [B, T, D], .neurons
    analysis.effective_rank(traj); analysis.neuron_activity(traj)["mean_abs"]
    analysis.plot_stability({"tnd": lam, "lstm": lam_lstm})
    analysis.plot_topology(graph, edge_weights=w)
"""

from tnd.analysis.activity import StateTrajectory, effective_rank, neuron_activity, state_trajectory
from tnd.analysis.plots import (
    plot_stability,
    plot_state_trajectories,
    plot_topology,
    plot_training_curves,
    read_metrics,
)
from tnd.analysis.stability import AnalysisError, lyapunov_exponents, model_lyapunov

__all__ = [
    "AnalysisError",
    "StateTrajectory",
    "effective_rank",
    "lyapunov_exponents",
    "model_lyapunov",
    "neuron_activity",
    "plot_stability",
    "plot_state_trajectories",
    "plot_topology",
    "plot_training_curves",
    "read_metrics",
    "state_trajectory",
]
