"""The TND core: input -> input neurons, K rounds of (interaction, local dynamics), readout.

**Words, one meaning each.**

* *update*: F's per-neuron map ``h' = F(h, m, u)`` (`LocalDynamics.apply`), nothing else;
* *round*: messages along the edges, then one update of every neuron (`TNDCore.round`);
* *step*: one time step of the input, K rounds with the input held (`TNDCore.step`, also
  the core's ``__call__``; the harness calls it `core_step`, and its own `step` wraps it
  with the encoder and the action head);
* *sequence*: T steps as one scan over their T * K rounds (`TNDCore.sequence`; the
  harness's `core_sequence`).

One step with input features ``f_t: [B, F]`` and state ``h`` (rows ``[N, d * B]``
inside a program, `tnd.layout`; ``[B, N, d]`` in the harness's carry):

    u      = place_input(f_t W_in + b_in)                  zero off the input neurons
    repeat K = inner_rounds times (one round each):
        m  = I(h)                                          messages along the graph's edges
        h  = F(h, m, u)                                    the update of every neuron
    out    = h[readout neurons] flattened                  [B, R * d]

``W_in: [F, S, d]`` gives each input neuron its own projection of the input. Every round
sees the same input ``u`` (the input is held during the step). The interaction weights are
loop-invariant, and so are the dynamics' per-neuron parameters: `prepare` computes both once
per sequence; the work of a round is only messages and updates.

**The core receives its parts.** I and F are objects built on the graph's `GraphArrays`
and handed to `TNDCore` (as jraph's ``GraphNetwork`` takes its update functions); the
lookup by name (``interaction="plastic"``, ``dynamics="cfc"``) belongs to the model
builder, `tnd.models.tnd_model.build_core`.

**A sequence is a scan over rounds.** `sequence` runs one ``lax.scan`` over the T * K
rounds of a window (the input and the reset of step t enter at its first round, the readout
leaves after its last), so XLA keeps every round's state in memory between rounds instead of
fusing (and recomputing) across them. The commonest TND (leaky F, static weights) runs the
round of `tnd.core.fused`, whose backward pass is written out; every other combination runs
the same round through JAX's derivatives. The one-step call (`step`, what an agent and
`tnd.analysis` run) uses the fused round's forward without the hand-written backward, so
JAX differentiates it in either mode; a sequence call supports reverse mode only.

**The graph is data** (`tnd.graph.GraphArrays`): neighbour lists, input slots and this
graph's number of rounds are arrays in the model's state. Graphs of one shape share one
compiled program, and with ``program_shape`` (fan-in, fan-out, rounds) the seeds of a
topology stack in one ``vmap``: a seed whose own K is below the program's rounds runs its
extra rounds as identities (its leak is 0), so it computes exactly what it computes alone.

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

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.core.fused import LeakyRoundWeights, leaky_round, leaky_round_forward
from tnd.dynamics.local import LeakyDynamics, LocalDynamics
from tnd.graph.arrays import GraphData, GraphShape
from tnd.graph.neuron_graph import NeuronGraph
from tnd.interaction.operators import PHI_GRADS_FROM_OUTPUT, Interaction
from tnd.layout import batch_columns, from_rows, to_rows

INPUT_PLACEMENTS = ("sensory", "all")
READOUTS = ("motor", "all")


@dataclasses.dataclass(frozen=True)
class ProgramShape:
    """Sizes a program pads to so that several graphs share it (the seeds of a stack):
    in-slots, out-slots and rounds per step. None keeps the graph's own."""

    fan_in: int | None = None
    fan_out: int | None = None
    rounds: int | None = None

    @classmethod
    def common(cls, shapes: list[ProgramShape]) -> ProgramShape:
        """The shape every one of ``shapes`` (each a graph's own) pads to: the largest of a size
        where they differ, None (no padding, no masked rounds) where they agree."""
        sizes = zip(*(dataclasses.astuple(s) for s in shapes))
        return cls(*(None if len(set(v)) == 1 else max(v) for v in sizes))

    @classmethod
    def parse(cls, value) -> ProgramShape:
        if value is None or isinstance(value, ProgramShape):
            return value or cls()
        unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TNDCoreError(f"program_shape has no key {', '.join(map(repr, unknown))}; valid: fan_in, fan_out, rounds.")
        return cls(**value)


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


def check_placement(input_neurons: str, readout: str) -> None:
    """Raises `TNDCoreError` for an unknown input placement or readout (before any part is built)."""
    if input_neurons not in INPUT_PLACEMENTS:
        raise TNDCoreError(f"Unknown input_neurons {input_neurons!r}. Valid values: {', '.join(INPUT_PLACEMENTS)}.")
    if readout not in READOUTS:
        raise TNDCoreError(f"Unknown readout {readout!r}. Valid values: {', '.join(READOUTS)}.")


def check_state_dim(state_dim) -> int:
    """d, the channels per neuron, as an int (`TNDCoreError` unless a positive integer)."""
    if not isinstance(state_dim, (int, np.integer)) or state_dim < 1:
        raise TNDCoreError(f"state_dim must be a positive integer, got {state_dim!r}.")
    return int(state_dim)


class TNDCore(nnx.Module):
    """The recurrent TND core on a `NeuronGraph` held as data (carry ``[B, N, d]``).

    It receives its parts, built on the graph's arrays (`tnd.models.tnd_model.build_core`
    builds them from option names), as jraph's ``GraphNetwork`` receives its update functions.

    Args:
      graph: the neuron graph (host side: its distances set the rounds).
      in_features: F, the width of the encoder features.
      interaction: I, an `Interaction` on the graph's `GraphArrays` (its ``state_dim`` is d).
      dynamics: F, a `LocalDynamics` on the same `GraphArrays` and d.
      inner_rounds: communication rounds K per time step (>= 1), or ``"auto"``: one more than
        the input -> readout distance, so actions do not lag the input (module docstring).
      input_neurons: ``sensory`` (the graph's sensory neurons receive the input) | ``all``.
      readout: ``motor`` (the graph's motor neurons are read out) | ``all``.
      program_rounds: the rounds per step of a program several graphs share (a stack's
        `ProgramShape.rounds`; None: this graph's own); it never changes what the model computes.
    """

    def __init__(
        self, graph: NeuronGraph, in_features: int, *, interaction: Interaction, dynamics: LocalDynamics,
        rngs: nnx.Rngs, inner_rounds: int | str = "auto", input_neurons: str = "sensory", readout: str = "motor",
        program_rounds: int | None = None,
    ):
        check_placement(input_neurons, readout)
        arrays = interaction.arrays
        shape = arrays.shape
        if (dynamics.arrays is not arrays or dynamics.state_dim != interaction.state_dim
                or (shape.num_neurons, shape.num_edges) != (graph.num_neurons, graph.num_edges)):
            raise TNDCoreError("The interaction and the dynamics must run on one GraphArrays of this graph, "
                               "with one state_dim.")
        self.arrays = arrays
        self.state_dim = int(interaction.state_dim)
        every = np.arange(graph.num_neurons)
        inputs = graph.sensory if input_neurons == "sensory" else every
        read = graph.motor if readout == "motor" else every
        self.input_neurons, self.readout_neurons = input_neurons, readout
        distance = int(graph.hops(inputs, read))
        own_rounds = resolve_inner_rounds(inner_rounds, distance, f"graph '{graph.name}'")
        if program_rounds is not None and program_rounds < own_rounds:
            raise TNDCoreError(f"program_shape rounds={program_rounds} is below this graph's {own_rounds} rounds per step.")
        self.inner_rounds = int(program_rounds or own_rounds)  # rounds the program runs per step
        self.masked_rounds = program_rounds is not None  # a stack: this graph's own rounds are data
        self.own_rounds = GraphData(jnp.asarray(own_rounds, jnp.int32))
        self.distance = GraphData(jnp.asarray(distance, jnp.int32))
        self.interaction = interaction
        self.dynamics = dynamics
        num_inputs = int(inputs.size)
        self.input_kernel = nnx.Param(
            jax.random.normal(rngs.params(), (in_features, num_inputs, self.state_dim)) / np.sqrt(in_features)
        )
        self.input_bias = nnx.Param(jnp.zeros((num_inputs, self.state_dim)))
        self.num_readout = int(read.size)
        if input_neurons == "sensory":
            slot = np.full(graph.num_neurons, num_inputs, np.int32)  # row S = zeros (non-input)
            slot[inputs] = np.arange(num_inputs, dtype=np.int32)
            self.input_slot = GraphData(jnp.asarray(slot))

    # ------------------------------------------------------------------ shapes and graph
    @property
    def num_neurons(self) -> int:
        return self.arrays.num_neurons

    @property
    def graph(self) -> NeuronGraph:
        """The neuron graph (rebuilt on the host from the arrays the model holds)."""
        return self.arrays.graph

    @property
    def input_readout_hops(self) -> int:
        """D, the input -> readout distance in edges."""
        return int(self.distance[...])

    @property
    def rounds(self) -> int:
        """This graph's own rounds per step (the program's ``inner_rounds`` may pad beyond it)."""
        return int(self.own_rounds[...])

    def own_program_shape(self) -> ProgramShape:
        """This graph's own fan-in, fan-out and rounds (what a stack pads the others to)."""
        shape = GraphShape.of(self.graph)
        return ProgramShape(shape.fan_in, shape.fan_out, self.rounds)

    @property
    def out_features(self) -> int:
        """Width of the core output: read-out neurons times d."""
        return self.num_readout * self.state_dim

    @property
    def path(self) -> str:
        return self.interaction.path

    @property
    def fused(self) -> bool:
        """Whether rounds run `tnd.core.fused.leaky_round` (leaky F, static weights on the sparse path)."""
        return (type(self.dynamics).apply is LeakyDynamics.apply and self.interaction.static_weights
                and type(self.interaction).messages is Interaction.messages and self.path == "sparse"
                and self.interaction.phi_name in PHI_GRADS_FROM_OUTPUT)

    def initial_state(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.num_neurons, self.state_dim))

    # ------------------------------------------------------------------ pieces
    def prepare(self, batch: int, *, training: bool = False):
        """Loop-invariant interaction weights and dynamics parameters for batch size B
        (``training``: in the layouts of the reverse-mode-only sequence path)."""
        interaction = self.interaction.prepare(batch)
        dynamics = self.dynamics.prepare(batch, transposed=training or self.fused)
        if self.fused:
            w = dynamics["w"]
            return LeakyRoundWeights(interaction.w, interaction.w_out, w.w, w.w_t, dynamics["b"], dynamics["inv_tau"])
        return interaction, dynamics

    def input_rows(self, features: jax.Array) -> jax.Array:
        """Features ``[..., B, F]`` -> the input neurons' input rows ``[..., S, d * B]``."""
        u = jnp.einsum("...bf,fsd->...sdb", features, self.input_kernel[...])
        u = u + self.input_bias[...][..., None]
        return u.reshape(u.shape[:-2] + (-1,))

    def place(self, u: jax.Array) -> jax.Array:
        """Input rows of the input neurons ``[S, C]`` -> rows ``[N, C]`` (zero elsewhere)."""
        if self.input_neurons == "all":
            return u
        return _place_rows(u, self.input_slot[...], self.arrays.array("sensory"))

    def read(self, h: jax.Array) -> jax.Array:
        """State rows ``[N, d * B]`` -> the readout neurons' rows ``[R, d * B]``."""
        return h if self.readout_neurons == "all" else h[self.arrays.array("motor")]

    def readout_features(self, read: jax.Array, batch: int) -> jax.Array:
        """Readout rows ``[..., R, d * B]`` -> features ``[..., B, R * d]`` (neuron-major, as the head reads them)."""
        lead = read.shape[:-2]
        read = read.reshape(lead + (read.shape[-2], self.state_dim, batch))
        read = jnp.moveaxis(read, -1, -3)  # [..., B, R, d]
        return read.reshape(lead + (batch, -1))

    def round(self, prepared, h: jax.Array, x: jax.Array, u: jax.Array, active: jax.Array | None = None,
              *, hand_written_backward: bool = False):
        """One round on rows: ``(h, x = phi(h)) -> (h', x')`` with the placed input rows ``u``.

        ``active`` (a stack's padded rounds): where false the round leaves ``h`` as it is.
        ``hand_written_backward``: a fused round takes `tnd.core.fused.leaky_round`'s reverse
        mode (training); otherwise JAX differentiates it, in either mode.
        """
        if self.fused:
            weights = prepared if active is None else prepared._replace(inv_tau=prepared.inv_tau * active)
            index = (self.arrays.array("in_index"), self.arrays.array("out_index"))
            fused_round = leaky_round if hand_written_backward else leaky_round_forward
            return fused_round(self.interaction.phi_name, index, weights, h, x, u)
        interaction, dynamics = prepared
        m = self.interaction.messages(interaction, h, x)
        h_next = self.dynamics.apply(dynamics, h, m, u)
        if active is not None:
            h_next = jnp.where(active, h_next, h)
        return h_next, self.interaction.phi(h_next)

    def active(self, r: jax.Array) -> jax.Array | None:
        """Whether round ``r`` of a step is one of this graph's own (None: every round is)."""
        return (r < self.own_rounds[...]) if self.masked_rounds else None

    # ------------------------------------------------------------------ steps and sequences
    def step(self, carry: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One time step: carry ``[B, N, d]``, features ``[B, F]`` -> (carry, out ``[B, R * d]``)."""
        batch = carry.shape[0]
        prepared = self.prepare(batch)
        h = to_rows(carry)
        u = self.place(self.input_rows(features))

        def one_round(r, state):
            return self.round(prepared, *state, u, self.active(r))

        h, _ = jax.lax.fori_loop(0, self.inner_rounds, one_round, (h, self.interaction.phi(h)))
        return from_rows(h, batch), self.readout_features(self.read(h), batch)

    def __call__(self, carry: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Calling the core runs one `step`."""
        return self.step(carry, features)

    def sequence(self, carry: jax.Array, features: jax.Array, resets: jax.Array) -> tuple[jax.Array, jax.Array]:
        """T steps as one scan over T * K rounds: carry ``[B, N, d]``, features ``[B, T, F]``,
        resets ``[B, T]`` (true: the carry restarts from zeros before that step) -> (carry,
        outputs ``[B, T, R * d]``)."""
        batch, time = features.shape[:2]
        k = self.inner_rounds
        prepared = self.prepare(batch, training=True)
        u = self.input_rows(jnp.swapaxes(features, 0, 1))  # [T, S, C]
        keep = batch_columns(jnp.logical_not(resets).astype(features.dtype).T, self.state_dim)  # [T, 1, C]
        first = (jnp.arange(time * k) % k == 0)[:, None, None]
        keep = jnp.where(first, jnp.repeat(keep, k, axis=0), 1.0)  # resets act at each step's first round
        rounds = (jnp.repeat(u, k, axis=0), keep, jnp.arange(time * k) % k)
        phi_zero = self.interaction.phi(jnp.zeros(()))

        def body(state, inputs):
            h, x = state
            u_t, keep_t, r = inputs
            h, x = h * keep_t, x * keep_t + phi_zero * (1.0 - keep_t)
            h, x = self.round(prepared, h, x, self.place(u_t), self.active(r), hand_written_backward=True)
            return (h, x), self.read(h)

        h = to_rows(carry)
        (h, _), read = jax.lax.scan(body, (h, self.interaction.phi(h)), rounds)
        outputs = self.readout_features(read[k - 1::k], batch)  # [T, B, R * d]
        return from_rows(h, batch), jnp.swapaxes(outputs, 0, 1)

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


@jax.custom_vjp
def _place_rows(u: jax.Array, slot: jax.Array, inputs: jax.Array) -> jax.Array:
    """Rows ``[S, C]`` -> ``[N, C]``: neuron n takes row ``slot[n]`` (``S``: zeros)."""
    return jnp.concatenate([u, jnp.zeros((1,) + u.shape[1:], u.dtype)])[slot]


def _place_fwd(u, slot, inputs):
    return _place_rows(u, slot, inputs), inputs


def _place_bwd(inputs, g):
    return g[inputs], None, None  # a gather, not the scatter-add JAX would use


_place_rows.defvjp(_place_fwd, _place_bwd)
