"""I: interaction operators (messages along the graph's edges) and their sparse/dense paths."""

from tnd.interaction.neighbours import aggregate, gather_sum, slot_products
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
)

__all__ = [
    "EdgeGate", "Interaction", "InteractionError", "LowRankInteraction",
    "PATHS", "PHIS", "PlasticInteraction", "PreparedWeights", "ScalarInteraction",
    "VectorInteraction", "aggregate", "choose_path", "gather_sum", "interaction_names", "make_interaction",
    "register_interaction", "slot_products",
]
