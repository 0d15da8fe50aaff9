"""tnd: Topological Neural Dynamics in JAX/Flax (graph, interaction, dynamics, models, training)."""

import logging

# A library's loggers stay silent unless the application configures logging (tnd-train
# routes them to the run folder's train.log).
logging.getLogger(__name__).addHandler(logging.NullHandler())
