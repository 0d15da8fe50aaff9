"""I: interaction operators (messages along the graph's edges) and their sparse/dense paths."""

from tnd.interaction.neighbours import (
    NeighbourLists,
    aggregate,
    aggregate_transpose,
    neighbour_lists,
    slot_dot,
)
from tnd.interaction.operators import (
    PATHS,
    PHIS,
    EdgeGate,
    Interaction,
    InteractionError,
    LowRankInteraction,
    PlasticInteraction,
    PreparedWeights,
    ScalarInteraction,
    VectorInteraction,
    choose_path,
    interaction_names,
    make_interaction,
    register_interaction,
    sparse_cost_ratio,
)

__all__ = [
    "EdgeGate", "Interaction", "InteractionError", "LowRankInteraction",
    "NeighbourLists", "PATHS", "PHIS", "PlasticInteraction", "PreparedWeights", "ScalarInteraction",
    "VectorInteraction", "aggregate", "aggregate_transpose", "choose_path", "interaction_names", "make_interaction",
    "neighbour_lists", "register_interaction", "slot_dot", "sparse_cost_ratio",
]
