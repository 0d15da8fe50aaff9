"""The TND core: input -> input neurons, K rounds of (interaction, local dynamics), readout.

One time step with input features ``f_t: [B, F]`` and state ``h: [B, N, d]``:

    u      = place_input(f_t W_in + b_in)                  [N, B, d], zero off the input neurons
    repeat K = inner_rounds times:
        m  = I(h)                                          messages along the graph's edges
        h  = F(h, m, u)                                    local per-neuron update
    out    = h[readout neurons] flattened                  [B, R * d]

``W_in: [F, S, d]`` gives each input neuron its own projection of the input. Every round
sees the same input ``u`` (the input is held during the step). The interaction weights are
loop-invariant, and so are the dynamics' per-neuron parameters: `prepare` computes both once
(per step for `step`, once per *sequence* in the model's scan), the per-step work is only
messages and updates.

**Latency.** The input enters the input neurons in the first round of a step and then
travels one edge per round, so the readout at step t depends on the input at step t only
if K >= D + 1, with D the graph's input -> readout distance (`NeuronGraph.hops`: D = 3 on
``layered_ncp``, whose sensory -> inter -> command -> motor path has three edges; D = 1
on ``fully_connected``; D = 0 when input and readout neurons overlap). With fewer rounds
the actions lag the observations by ``ceil((D + 1) / K) - 1`` steps. ``inner_rounds="auto"``
(the default) sets K = D + 1; an explicit K below it is allowed and warns once with
`LatencyWarning`. Input placement (``input_neurons``: ``sensory`` | ``all``) and readout
(``readout``: ``motor`` | ``all``) change D.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct
from jax.ad_checkpoint import checkpoint_name

from tnd.dynamics.local import make_dynamics
from tnd.graph.neuron_graph import NeuronGraph
from tnd.interaction.operators import PreparedWeights, make_interaction


MESSAGES = "tnd_messages"  # checkpoint name of the messages: a rematerialised step keeps them


INPUT_PLACEMENTS = ("sensory", "all")
READOUTS = ("motor", "all")


@struct.dataclass
class PreparedCore:
    """What `TNDCore.prepare` computes once per sequence: the interaction's weights in its
    path's layout and the dynamics' per-neuron parameters (arrays by name)."""

    interaction: PreparedWeights
    dynamics: dict[str, jax.Array]


class TNDCoreError(ValueError):
    """An invalid TND core option."""


class LatencyWarning(UserWarning):
    """inner_rounds is below the graph's input -> readout distance: actions lag the input."""


def lag_steps(inner_rounds: int, distance: int) -> int:
    """Steps by which actions lag the input with K rounds per step and input -> readout distance D."""
    return -(-(int(distance) + 1) // int(inner_rounds)) - 1


def resolve_inner_rounds(inner_rounds: int | str, distance: int, graph_name: str = "graph") -> int:
    """K from ``inner_rounds`` (a positive int or ``"auto"``) and the input -> readout distance D.

    ``"auto"`` gives ``D + 1``, the fewest rounds with no lag; an int that leaves a lag warns
    once (`LatencyWarning`).
    """
    if isinstance(inner_rounds, str):
        if inner_rounds != "auto":
            raise TNDCoreError(f"inner_rounds must be a positive integer or 'auto', got {inner_rounds!r}.")
        return int(distance) + 1
    if isinstance(inner_rounds, (bool, np.bool_)) or not isinstance(inner_rounds, (int, np.integer)) or inner_rounds < 1:
        raise TNDCoreError(f"inner_rounds must be a positive integer or 'auto', got {inner_rounds!r}.")
    lag = lag_steps(inner_rounds, distance)
    if lag > 0:
        warnings.warn(
            f"inner_rounds={int(inner_rounds)} on {graph_name} (input -> readout distance {distance}) makes "
            f"every action see observations {lag} step(s) old; inner_rounds=auto ({int(distance) + 1}) removes the lag.",
            LatencyWarning, stacklevel=2,
        )
    return int(inner_rounds)


class TNDCore(nnx.Module):
    """The recurrent TND core on a fixed `NeuronGraph` (state ``[B, N, d]``).

    Args:
      graph: the neuron graph (static).
      in_features: F, the width of the encoder features.
      state_dim: d, channels per neuron.
      interaction: one of ``tnd.interaction.interaction_names()``; ``interaction_options`` go to it
        (``rank``, ``phi``, ``gate_penalty``, ``gate_init_logit``, ``chunk``).
      dynamics: one of ``tnd.dynamics.dynamics_names()``; ``dynamics_options`` go to it.
      sharing: ``shared`` | ``per_neuron`` | ``per_type`` dynamics parameters.
      inner_rounds: communication rounds K per time step (>= 1), or ``"auto"``: one more than
        the input -> readout distance, so actions do not lag the input (module docstring).
      input_neurons: ``sensory`` (the graph's sensory neurons receive the input) | ``all``.
      readout: ``motor`` (the graph's motor neurons are read out) | ``all``.
      path: ``auto`` | ``sparse`` | ``dense`` execution path of the interaction.
      edge_gate: learn a sigmoid gate per edge with an L1 penalty (`regularization`).
    """

    def __init__(
        self, graph: NeuronGraph, in_features: int, *, rngs: nnx.Rngs, state_dim: int = 4,
        interaction: str = "scalar", dynamics: str = "leaky", sharing: str = "shared",
        inner_rounds: int | str = "auto", path: str = "auto", edge_gate: bool = False,
        interaction_options: dict | None = None, dynamics_options: dict | None = None,
        input_neurons: str = "sensory", readout: str = "motor",
    ):
        if not isinstance(state_dim, (int, np.integer)) or state_dim < 1:
            raise TNDCoreError(f"state_dim must be a positive integer, got {state_dim!r}.")
        if input_neurons not in INPUT_PLACEMENTS:
            raise TNDCoreError(f"Unknown input_neurons {input_neurons!r}. Valid values: {', '.join(INPUT_PLACEMENTS)}.")
        if readout not in READOUTS:
            raise TNDCoreError(f"Unknown readout {readout!r}. Valid values: {', '.join(READOUTS)}.")
        self.graph = graph
        self.state_dim = int(state_dim)
        every = np.arange(graph.num_neurons)
        inputs = graph.sensory if input_neurons == "sensory" else every
        self._readout = tuple((graph.motor if readout == "motor" else every).tolist())
        self.latency_hops = int(graph.hops(inputs, np.asarray(self._readout)))
        self.inner_rounds = resolve_inner_rounds(inner_rounds, self.latency_hops, f"graph '{graph.name}'")
        self.interaction = make_interaction(
            interaction, graph, self.state_dim, rngs=rngs, path=path, edge_gate=edge_gate,
            **(interaction_options or {}),
        )
        self.dynamics = make_dynamics(dynamics, graph, self.state_dim, rngs=rngs, sharing=sharing, **(dynamics_options or {}))
        num_inputs = int(inputs.size)
        self.input_kernel = nnx.Param(
            jax.random.normal(rngs.params(), (in_features, num_inputs, self.state_dim)) / np.sqrt(in_features)
        )
        self.input_bias = nnx.Param(jnp.zeros((num_inputs, self.state_dim)))
        if input_neurons == "all":
            self._input_slot = None  # u is already [N, B, d]
        else:
            slot = np.full(graph.num_neurons, num_inputs, np.int32)  # row S = zeros (non-input)
            slot[inputs] = np.arange(num_inputs, dtype=np.int32)
            self._input_slot = tuple(slot.tolist())

    # ------------------------------------------------------------------ shapes
    @property
    def num_neurons(self) -> int:
        return self.graph.num_neurons

    @property
    def out_features(self) -> int:
        """Width of the core output: read-out neurons times d."""
        return len(self._readout) * self.state_dim

    @property
    def path(self) -> str:
        return self.interaction.path

    def initial_state(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.num_neurons, self.state_dim))

    # ------------------------------------------------------------------ pieces
    def prepare(self) -> PreparedCore:
        """Loop-invariant interaction weights and dynamics parameters (compute once per sequence)."""
        return PreparedCore(self.interaction.prepare(), self.dynamics.prepare())

    def place_input(self, features: jax.Array) -> jax.Array:
        """Features ``[B, F]`` -> per-neuron input ``u: [N, B, d]`` (zero off the input neurons)."""
        u = jnp.einsum("bf,fsd->sbd", features, self.input_kernel[...]) + self.input_bias[...][:, None, :]
        if self._input_slot is None:
            return u
        u = jnp.concatenate([u, jnp.zeros((1,) + u.shape[1:], u.dtype)])
        return u[np.asarray(self._input_slot)]

    def update(self, prepared: PreparedCore, h: jax.Array, u: jax.Array) -> jax.Array:
        """The local update of one time step on neuron-major states ``h, u: [N, B, d]``."""
        for _ in range(self.inner_rounds):
            m = checkpoint_name(self.interaction.messages(prepared.interaction, h), MESSAGES)
            h = self.dynamics.apply(prepared.dynamics, h, m, u)
        return h

    def readout(self, h: jax.Array) -> jax.Array:
        """Neuron-major states ``[N, B, d]`` -> readout ``[B, R * d]`` (R read-out neurons)."""
        read = h if len(self._readout) == self.num_neurons else h[np.asarray(self._readout)]
        read = jnp.swapaxes(read, 0, 1)
        return read.reshape(read.shape[0], -1)

    def neuron_major_step(self, prepared: PreparedCore, h: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One time step on neuron-major states ``h: [N, B, d]`` -> (h, out ``[B, M*d]``)."""
        h = self.update(prepared, h, self.place_input(features))
        return h, self.readout(h)

    def step(self, prepared: PreparedCore, carry: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
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
