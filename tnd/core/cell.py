"""The TND core: input -> sensory neurons, K rounds of (interaction, local dynamics), motor readout.

One time step with input features ``f_t: [B, F]`` and state ``h: [B, N, d]``:

    u      = scatter_sensory(f_t W_in + b_in)                [N, B, d], zero off sensory neurons
    repeat inner_rounds times:
        m  = I(h)                                            messages along the graph's edges
        h  = F(h, m, u)                                      local per-neuron update
    out    = h[motor] flattened                              [B, M * d]

``W_in: [F, S, d]`` gives each sensory neuron its own projection of the input. Every round
sees the same input ``u`` (the input is held during the step). The interaction weights are
loop-invariant, and so are the dynamics' per-neuron parameters: `prepare` computes both once
(per step for `step`, once per *sequence* in the model's scan), the per-step work is only
messages and updates.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from tnd.dynamics.local import make_dynamics
from tnd.graph.neuron_graph import NeuronGraph
from tnd.interaction.operators import make_interaction


MESSAGES = "tnd_messages"  # checkpoint name of the messages: a rematerialised step keeps them


class TNDCoreError(ValueError):
    """An invalid TND core option."""


class TNDCore(nnx.Module):
    """The recurrent TND core on a fixed `NeuronGraph` (state ``[B, N, d]``).

    Args:
      graph: the neuron graph (static).
      in_features: F, the width of the encoder features.
      state_dim: d, channels per neuron.
      interaction: one of ``tnd.interaction.INTERACTIONS``; ``interaction_options`` go to it
        (``rank``, ``phi``, ``gate_penalty``, ``gate_init_logit``, ``chunk``).
      dynamics: one of ``tnd.dynamics.DYNAMICS``; ``dynamics_options`` go to it.
      sharing: ``shared`` | ``per_neuron`` | ``per_type`` dynamics parameters.
      inner_rounds: communication rounds per time step (>= 1).
      path: ``auto`` | ``sparse`` | ``dense`` execution path of the interaction.
      edge_gate: learn a sigmoid gate per edge with an L1 penalty (`regularization`).
    """

    def __init__(
        self, graph: NeuronGraph, in_features: int, *, rngs: nnx.Rngs, state_dim: int = 4,
        interaction: str = "scalar", dynamics: str = "leaky", sharing: str = "shared",
        inner_rounds: int = 1, path: str = "auto", edge_gate: bool = False,
        interaction_options: dict | None = None, dynamics_options: dict | None = None,
    ):
        if not isinstance(state_dim, (int, np.integer)) or state_dim < 1:
            raise TNDCoreError(f"state_dim must be a positive integer, got {state_dim!r}.")
        if not isinstance(inner_rounds, (int, np.integer)) or inner_rounds < 1:
            raise TNDCoreError(f"inner_rounds must be a positive integer, got {inner_rounds!r}.")
        self.graph = graph
        self.state_dim = int(state_dim)
        self.inner_rounds = int(inner_rounds)
        self.interaction = make_interaction(
            interaction, graph, self.state_dim, rngs=rngs, path=path, edge_gate=edge_gate,
            **(interaction_options or {}),
        )
        self.dynamics = make_dynamics(dynamics, graph, self.state_dim, rngs=rngs, sharing=sharing, **(dynamics_options or {}))
        num_sensory = int(graph.sensory.size)
        self.input_kernel = nnx.Param(
            jax.random.normal(rngs.params(), (in_features, num_sensory, self.state_dim)) / np.sqrt(in_features)
        )
        self.input_bias = nnx.Param(jnp.zeros((num_sensory, self.state_dim)))
        slot = np.full(graph.num_neurons, num_sensory, np.int32)  # row S = zeros (non-sensory)
        slot[graph.sensory] = np.arange(num_sensory, dtype=np.int32)
        self._sensory_slot = tuple(slot.tolist())

    # ------------------------------------------------------------------ shapes
    @property
    def num_neurons(self) -> int:
        return self.graph.num_neurons

    @property
    def out_features(self) -> int:
        """Width of the core output: motor neurons times d."""
        return int(self.graph.motor.size) * self.state_dim

    @property
    def path(self) -> str:
        return self.interaction.path

    def initial_state(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.num_neurons, self.state_dim))

    # ------------------------------------------------------------------ pieces
    def prepare(self) -> dict[str, Any]:
        """Loop-invariant interaction weights and dynamics parameters (compute once per sequence)."""
        return {"interaction": self.interaction.prepare(), "dynamics": self.dynamics.prepare()}

    def sensory_input(self, features: jax.Array) -> jax.Array:
        """Features ``[B, F]`` -> per-neuron input ``u: [N, B, d]`` (zero off sensory neurons)."""
        u = jnp.einsum("bf,fsd->sbd", features, self.input_kernel[...]) + self.input_bias[...][:, None, :]
        u = jnp.concatenate([u, jnp.zeros((1,) + u.shape[1:], u.dtype)])
        return u[np.asarray(self._sensory_slot)]

    def update(self, prepared: dict[str, Any], h: jax.Array, u: jax.Array) -> jax.Array:
        """The local update of one time step on neuron-major states ``h, u: [N, B, d]``."""
        for _ in range(self.inner_rounds):
            m = checkpoint_name(self.interaction.messages(prepared["interaction"], h), MESSAGES)
            h = self.dynamics.apply(prepared["dynamics"], h, m, u)
        return h

    def readout(self, h: jax.Array) -> jax.Array:
        """Neuron-major states ``[N, B, d]`` -> motor readout ``[B, M * d]``."""
        motor = jnp.swapaxes(h[self.graph.motor], 0, 1)
        return motor.reshape(motor.shape[0], -1)

    def neuron_major_step(self, prepared: dict[str, Any], h: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One time step on neuron-major states ``h: [N, B, d]`` -> (h, out ``[B, M*d]``)."""
        h = self.update(prepared, h, self.sensory_input(features))
        return h, self.readout(h)

    def step(self, prepared: dict[str, Any], carry: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One time step: carry ``[B, N, d]``, features ``[B, F]`` -> (carry, out ``[B, M*d]``)."""
        h, out = self.neuron_major_step(prepared, jnp.swapaxes(carry, 0, 1), features)
        return jnp.swapaxes(h, 0, 1), out

    def __call__(self, carry: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.step(self.prepare(), carry, features)

    # ------------------------------------------------------------------ training extras
    def regularization(self) -> jax.Array:
        """Scalar to add to the training loss (the edge-gate sparsity penalty; 0 without a gate)."""
        return self.interaction.regularization()

    def kept_edges(self, threshold: float = 0.5) -> np.ndarray:
        """Boolean ``[E]`` mask (graph edge order) of edges whose gate exceeds ``threshold``."""
        return self.interaction.kept_edges(threshold)

    def pruned_graph(self, threshold: float = 0.5) -> NeuronGraph:
        """The graph with only the kept edges (raises `GraphError` if it becomes invalid)."""
        keep = self.kept_edges(threshold)
        g = self.graph
        return NeuronGraph.from_edges(
            g.num_neurons, g.senders[keep], g.receivers[keep], g.sensory, g.motor,
            neuron_types=g.neuron_types, labels=g.labels, name=f"{g.name}-pruned",
        )
