"""F: local neuron dynamics (leaky, gated, CfC-style) with shared / per-neuron / per-type parameters."""

from tnd.dynamics.local import (
    SHARING,
    CfCDynamics,
    DynamicsError,
    GatedDynamics,
    LeakyDynamics,
    LocalDynamics,
    dynamics_names,
    num_groups,
    make_dynamics,
    register_dynamics,
)

__all__ = [
    "CfCDynamics", "DynamicsError", "GatedDynamics", "LeakyDynamics", "LocalDynamics", "SHARING",
    "dynamics_names", "num_groups", "make_dynamics", "register_dynamics",
]
