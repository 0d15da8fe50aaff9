"""The TND harness model: encoder -> `TNDCore` (scan over time) -> shared action head.

Registered as ``"tnd"`` with width option ``num_neurons``::

    build_model("tnd", obs_shape=(4,), num_actions=3, rngs=nnx.Rngs(0),
                num_neurons=64, topology="layered_ncp", interaction="plastic", dynamics="cfc")

Options (unknown values raise one error listing the valid ones):
  num_neurons (64; or the given graph's), topology ("layered_ncp", any name in
  ``tnd.graph.topology_names()``), topology_options (dict, e.g. ``{"density": 0.05}``),
  graph_seed (0), num_sensory / num_motor (None -> ``max(1, N // 8)``), graph (a
  `NeuronGraph`; replaces the topology options, and num_neurons must match it when given),
  state_dim d (4), interaction ("scalar" | "vector" | "lowrank" | "plastic"),
  interaction_options (dict: rank, phi, gate_penalty, gate_init_logit), dynamics
  ("leaky" | "gated" | "cfc"), dynamics_options (dict: tau_min, tau_max, learn_tau for
  leaky; backbone_units, timespan for cfc), sharing ("shared" | "per_neuron" | "per_type"),
  inner_rounds ("auto": one more than the graph's input -> readout distance, the fewest
  rounds with which actions do not lag the input; or a positive int), input_neurons
  ("sensory" | "all"), readout ("motor" | "all"), path ("auto" | "sparse" | "dense"),
  edge_gate (False), encoder_features (32), program_shape (None; ``{fan_in, fan_out, rounds}``
  to pad to, so that the seeds of a topology share one program: `tnd.core.ProgramShape`).

The interaction and dynamics are looked up here by name and built on the graph's arrays
(`build_core`); `TNDCore` receives them as objects.

With ``edge_gate=True`` add ``model.regularization()`` to the training loss (it is 0.0
otherwise); ``model.kept_edges()`` / ``model.core.pruned_graph()`` read the surviving edges.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from tnd.core.cell import ProgramShape, TNDCore, check_placement, check_state_dim
from tnd.dynamics.local import make_dynamics
from tnd.graph.arrays import GraphArrays
from tnd.graph.neuron_graph import NeuronGraph
from tnd.interaction.operators import make_interaction
from tnd.models.base import SequenceModel
from tnd.models.encoders import make_io
from tnd.models.registry import register_model
from tnd.models.wiring import GraphOptions


def build_core(
    graph: NeuronGraph, in_features: int, *, rngs: nnx.Rngs, state_dim: int = 4, interaction: str = "scalar",
    interaction_options: dict | None = None, dynamics: str = "leaky", dynamics_options: dict | None = None,
    sharing: str = "shared", path: str = "auto", edge_gate: bool = False, inner_rounds: int | str = "auto",
    input_neurons: str = "sensory", readout: str = "motor", program_shape: ProgramShape | dict | None = None,
) -> TNDCore:
    """The TND core on ``graph`` from option names: I and F looked up by name, built on the
    graph's arrays (padded to ``program_shape``) and handed to `TNDCore`.

    The parts draw their parameters before the core's input projection (one rng stream:
    interaction, dynamics, input kernel), so equal options and seeds give equal parameters.
    """
    state_dim = check_state_dim(state_dim)
    check_placement(input_neurons, readout)
    shape = ProgramShape.parse(program_shape)
    arrays = GraphArrays(graph, fan_in=shape.fan_in, fan_out=shape.fan_out)
    interaction_part = make_interaction(
        interaction, arrays, state_dim, rngs=rngs, path=path, edge_gate=edge_gate, **(interaction_options or {}),
    )
    dynamics_part = make_dynamics(dynamics, arrays, state_dim, rngs=rngs, sharing=sharing, **(dynamics_options or {}))
    return TNDCore(
        graph, in_features, interaction=interaction_part, dynamics=dynamics_part, rngs=rngs,
        inner_rounds=inner_rounds, input_neurons=input_neurons, readout=readout, program_rounds=shape.rounds,
    )


class TNDModel(SequenceModel):
    """Topological Neural Dynamics behind the harness contract (carry: ``[B, N, d]``).

    ``core_options``: `build_core`'s (the parts by name, rounds, placement, program shape).
    """

    def __init__(self, graph: NeuronGraph, *, obs_shape, num_actions: int, rngs: nnx.Rngs,
                 encoder_features: int = 32, **core_options):
        self.core = build_core(graph, encoder_features, rngs=rngs, **core_options)
        self.encoder, self.head = make_io(obs_shape, encoder_features, self.core.out_features, num_actions, rngs=rngs)

    @property
    def graph(self) -> NeuronGraph:
        return self.core.graph

    def initial_state(self, batch_size: int) -> jax.Array:
        return self.core.initial_state(batch_size)

    def core_step(self, carry: jax.Array, features: jax.Array):
        """One step of the core (`TNDCore.step`): carry ``[B, N, d]``, features ``[B, F]``."""
        return self.core.step(carry, features)

    def core_sequence(self, carry: jax.Array, features: jax.Array, resets: jax.Array):
        """One scan over the window's rounds (`TNDCore.sequence`), the state kept as rows."""
        return self.core.sequence(carry, features, resets)

    def program_shape(self) -> ProgramShape:
        """The sizes another seed's program must pad to in order to share this one's (`ProgramShape`)."""
        return self.core.own_program_shape()

    def regularization(self) -> jax.Array:
        """Scalar to add to the loss: the edge-gate sparsity penalty (0.0 without a gate)."""
        return self.core.regularization()

    def kept_edges(self, threshold: float = 0.5) -> np.ndarray:
        return self.core.kept_edges(threshold)


@register_model("tnd", width_option="num_neurons", graph="always", graph_data=True)
def build_tnd(
    *, obs_shape, num_actions: int, rngs: nnx.Rngs, num_neurons: int | None = None, state_dim: int = 4,
    interaction: str = "scalar", interaction_options: dict | None = None, dynamics: str = "leaky",
    dynamics_options: dict | None = None, sharing: str = "shared", inner_rounds: int | str = "auto",
    input_neurons: str = "sensory", readout: str = "motor",
    path: str = "auto", edge_gate: bool = False, encoder_features: int = 32, program_shape: dict | None = None,
    **graph_options,
) -> TNDModel:
    """Builds the TND model (see the module docstring for the options; graph options: `GraphOptions`)."""
    graph = GraphOptions.parse("tnd", graph_options).resolve("tnd", num_neurons)
    return TNDModel(
        graph, obs_shape=obs_shape, num_actions=num_actions, rngs=rngs, encoder_features=encoder_features,
        state_dim=state_dim, interaction=interaction, dynamics=dynamics, sharing=sharing,
        inner_rounds=inner_rounds, input_neurons=input_neurons, readout=readout, path=path, edge_gate=edge_gate,
        interaction_options=interaction_options, dynamics_options=dynamics_options, program_shape=program_shape,
    )
