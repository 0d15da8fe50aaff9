"""F: local neuron dynamics (leaky, gated, CfC-style) with shared / per-neuron / per-type parameters."""

from tnd.dynamics.local import (
    DYNAMICS,
    SHARING,
    CfCDynamics,
    DynamicsError,
    GatedDynamics,
    LeakyDynamics,
    LocalDynamics,
    group_index,
    make_dynamics,
)

__all__ = [
    "CfCDynamics", "DYNAMICS", "DynamicsError", "GatedDynamics", "LeakyDynamics",
    "LocalDynamics", "SHARING", "group_index", "make_dynamics",
]
