"""I of the triple: interaction operators ``m_i = sum_{j -> i} w_ij * phi(h_j)``.

Variants (``make_interaction(kind, ...)``; `interaction_names()` lists them, and
``@register_interaction("name")`` on an `Interaction` subclass adds one, e.g. from a plugin
module named in ``plugins=[...]``):

* ``scalar``   one learned weight per edge, ``w_ij`` in R.
* ``vector``   one learned weight vector per edge, applied elementwise over the d state
               channels: ``m_i[c] = sum_j w_ij[c] * phi(h_j)[c]`` (d weights per edge, not a
               d x d map, so cost and parameters stay O(E d)).
* ``lowrank``  NGC-style (arXiv 2510.16851): ``w_ij = <u_i, v_j> / sqrt(r)`` from learned
               receiver/sender embeddings ``u, v: [N, r]``, restricted to the graph's edges.
* ``plastic``  state-dependent: ``w_ij(t) = w0_ij * sigmoid(<q(h_i), k(h_j)> / sqrt(r) + beta)``
               with learned static weights ``w0`` and shared query/key maps ``q, k: d -> r``.

Every variant runs on two execution paths that compute the same function (same phi, gate,
plasticity): ``sparse`` -- gathers along padded neighbour lists (`tnd.interaction.neighbours`),
cost O(N K B d) with K the padded fan-in -- and ``dense`` -- a masked ``[N, N]`` weight matrix
and one matmul, cost O(N^2 B d). ``path="auto"`` picks with `choose_path`.

The graph is data (`tnd.graph.GraphArrays`, shared with the core): neighbour indices are
arrays passed into the jitted program, so graphs of one shape share one program.

Optional learnable **edge gate**: ``w_ij <- w_ij * sigmoid(a_ij)`` with one logit per edge.
`regularization()` returns ``gate_penalty * mean_ij sigmoid(a_ij)`` (an L1 penalty on the
gates); add it to the loss so training prunes edges; `kept_edges()` reads which survive.

Weights are *prepared* once per sequence (`prepare(batch)` -> `PreparedWeights`, outside the
time scan: parameter layout changes are loop-invariant) and applied per round with
`messages(prepared, h)` on neuron-major rows ``[N, d * B]`` (`tnd.layout`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from tnd.graph.arrays import GraphArrays, GraphShape
from tnd.interaction.neighbours import aggregate
from tnd.layout import channel_map, per_neuron_rows
from tnd.registry import Registry, check_options, keyword_options

PATHS = ("auto", "sparse", "dense")
PART_ARGUMENTS = ("rngs",)  # what make_interaction passes every interaction besides its options
PHIS = {
    "tanh": jnp.tanh,
    "identity": lambda x: x,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "gelu": jax.nn.gelu,
}
# phi'(h) written with y = phi(h) alone, for the phis that allow it (the fused round's backward pass)
PHI_GRADS_FROM_OUTPUT = {
    "tanh": lambda y: 1.0 - y * y,
    "identity": lambda y: jnp.ones_like(y),
    "relu": lambda y: (y > 0).astype(y.dtype),
    "sigmoid": lambda y: y * (1.0 - y),
}

# auto rule, fitted to `tnd-bench --suite core` (Erdos-Renyi graphs, N = 64..1024, vector
# weights, d = 8, B = 32, on a 2-core CPU; results/bench/core_paths.jsonl, docs/benchmarks.md):
# the sparse path costs about one pass over the state per in-slot, the dense path an
# [N, N] matmul whose rate grows with N; the measured break-even fan-in K grows like
# sqrt(N) (K ~ 20 at N = 64, ~ 40 at 256, ~ 80 at 1024).
SPARSE_FAN_IN_SCALE = 2.5


class InteractionError(ValueError):
    """An invalid interaction option (unknown kind, path, phi, ...)."""


def _check_choice(what: str, value: str, valid) -> str:
    if value not in valid:
        raise InteractionError(f"Unknown {what} '{value}'. Valid values: {', '.join(valid)}.")
    return value


def choose_path(shape: GraphShape, path: str = "auto") -> str:
    """Resolves ``path``: ``"sparse"``/``"dense"`` as given; ``"auto"`` by neurons and fan-in.

    Rule: sparse iff ``fan_in <= SPARSE_FAN_IN_SCALE * sqrt(N)`` (K gathers of the state cost
    less than one ``[N, N]`` matmul), dense for dense-ish graphs. Fitted on a 2-core CPU
    (docs/benchmarks.md; measured by experiments/bench/core.py).
    """
    _check_choice("path", path, PATHS)
    if path != "auto":
        return path
    return "sparse" if shape.fan_in <= SPARSE_FAN_IN_SCALE * math.sqrt(shape.num_neurons) else "dense"


_INTERACTIONS: Registry[type[Interaction]] = Registry(
    "interaction", InteractionError, listed="Valid values", sort_names=False, register_name="register_interaction",
    accepts=(lambda cls: isinstance(cls, type) and issubclass(cls, Interaction), "an Interaction subclass"),
)


def register_interaction(kind: str):
    """Class decorator: registers an `Interaction` subclass as ``interaction=kind`` (its ``kind``)."""
    register = _INTERACTIONS.register(kind)

    def decorator(cls: type) -> type:
        register(cls)
        cls.kind = kind
        return cls

    return decorator


def interaction_names() -> tuple[str, ...]:
    """The registered interaction kinds, built-ins first."""
    return tuple(_INTERACTIONS.names())


@struct.dataclass
class PreparedWeights:
    """Loop-invariant interaction weights in the layout of one execution path.

    ``sparse``: ``w`` and ``w_out`` are tuples of per-slot rows (in-slots and out-slots,
    each ``[N, 1]`` for one weight per edge or ``[N, d * B]`` for a weight per channel).
    ``dense``: ``w`` is ``[N_send, N_recv, W]`` (``W`` = 1 or d) and ``w_out`` is empty.
    ``path`` is static (part of the tree structure), so a jitted step compiles one path.
    """

    w: tuple | jax.Array
    w_out: tuple = ()
    path: str = struct.field(pytree_node=False, default="dense")

    @property
    def sparse(self) -> bool:
        return self.path == "sparse"


class EdgeGate(nnx.Module):
    """A learnable gate ``sigmoid(logit_e)`` per edge, with an L1 sparsity penalty."""

    def __init__(self, num_edges: int, *, init_logit: float = 3.0, penalty: float = 1e-3):
        self.logits = nnx.Param(jnp.full((num_edges,), init_logit, jnp.float32))
        self.penalty = penalty

    def gates(self) -> jax.Array:
        return jax.nn.sigmoid(self.logits[...])

    def regularization(self) -> jax.Array:
        return self.penalty * jnp.mean(self.gates())


class Interaction(nnx.Module):
    """Base of the interaction operators: edge gate, path choice, phi, prepare/messages.

    Subclasses implement ``_edge_weights() -> [E, W]`` (per-edge weights in the graph's
    sorted edge order; ``W = 1`` scalar or ``d`` per channel) and may override
    `_sparse_messages` / `_dense_messages` (the plastic variant does; it then sets
    ``static_weights = False``). The graph's arrays are ``self.arrays`` (`GraphArrays`).
    """

    kind = "base"
    static_weights = True  # the weights do not depend on the state: prepared once per sequence

    def __init__(
        self, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs, path: str = "auto",
        phi: str = "tanh", edge_gate: bool = False, gate_penalty: float = 1e-3, gate_init_logit: float = 3.0,
    ):
        self.arrays = arrays
        self.state_dim = state_dim
        self.phi_name = _check_choice("phi", phi, tuple(PHIS))
        self.requested_path = _check_choice("path", path, PATHS)
        self.path = choose_path(arrays.shape, path)
        num_edges, num_neurons = arrays.num_edges, arrays.num_neurons
        self.gate = EdgeGate(num_edges, init_logit=float(gate_init_logit), penalty=gate_penalty) if edge_gate else None
        self._init_scale = 1.0 / math.sqrt(max(1.0, num_edges / num_neurons))

    # -------------------------------------------------------------- public API
    def phi(self, h: jax.Array) -> jax.Array:
        return PHIS[self.phi_name](h)

    def edge_weights(self) -> jax.Array:
        """Static per-edge weights ``[E, W]`` (gate applied), in the graph's edge order."""
        w = self._edge_weights()
        if self.gate is not None:
            w = w * self.gate.gates()[:, None]
        return w

    def prepare(self, batch: int, path: str | None = None) -> PreparedWeights:
        """Loop-invariant weights for ``path`` (default: the resolved path) and batch size B."""
        path = path or self.path
        if not self.static_weights:
            return PreparedWeights(self._edge_weights_for(path), (), path)
        return self._layout(self.edge_weights(), batch, path)

    def messages(self, prepared: PreparedWeights, h: jax.Array, x: jax.Array | None = None) -> jax.Array:
        """Messages rows ``[N, d * B]`` from state rows ``h: [N, d * B]`` (``x``: ``phi(h)``, when known)."""
        x = self.phi(h) if x is None else x
        if prepared.sparse:
            return self._sparse_messages(prepared, h, x)
        return self._dense_messages(prepared, h, x)

    def __call__(self, h: jax.Array, path: str | None = None) -> jax.Array:
        """Convenience: messages for batch-major states ``h: [B, N, d]`` -> ``[B, N, d]``."""
        from tnd.layout import from_rows, to_rows

        batch = h.shape[0]
        return from_rows(self.messages(self.prepare(batch, path), to_rows(h)), batch)

    def regularization(self) -> jax.Array:
        return self.gate.regularization() if self.gate is not None else jnp.zeros(())

    def kept_edges(self, threshold: float = 0.5) -> np.ndarray:
        """Boolean ``[E]``: edges whose gate exceeds ``threshold`` (all True without a gate)."""
        if self.gate is None:
            return np.ones(self.arrays.num_edges, bool)
        return np.asarray(self.gate.gates() > threshold)

    # -------------------------------------------------------------- layouts and paths
    def _edge_weights(self) -> jax.Array:
        raise NotImplementedError

    def _edge_weights_for(self, path: str) -> jax.Array:
        """State-dependent variants: their static part, in the path's layout (slots or dense)."""
        w = self.edge_weights()
        return self.arrays.edges_to_slots(w) if path == "sparse" else self.arrays.edges_to_dense(w)

    def _layout(self, w: jax.Array, batch: int, path: str) -> PreparedWeights:
        """Per-edge weights ``[E, W]`` -> the path's layout (slot rows, or dense ``[N, N, W]``)."""
        if path == "dense":
            return PreparedWeights(self.arrays.edges_to_dense(w), (), "dense")
        slots = self.arrays.edges_to_slots(w)  # [K_in, N, W]
        out = self.arrays.slots_to_out(slots)  # [K_out, N, W]
        rows = lambda v: tuple(per_neuron_rows(v[k], batch) if v.shape[-1] > 1 else v[k] for k in range(v.shape[0]))  # noqa: E731
        return PreparedWeights(rows(slots), rows(out), "sparse")

    def _sparse_messages(self, prepared, h, x):
        return aggregate(self.arrays.array("in_index"), self.arrays.array("out_index"), x, prepared.w, prepared.w_out)

    def _dense_messages(self, prepared, h, x):
        w = prepared.w  # [N_send, N_recv, 1 | d]
        if w.shape[-1] == 1:  # one [N, N] x [N, d * B] matmul
            return w[..., 0].T @ x
        n, d = w.shape[0], w.shape[-1]
        return jnp.einsum("jic,jcb->icb", w, x.reshape(n, d, -1)).reshape(x.shape)


@register_interaction("scalar")
class ScalarInteraction(Interaction):
    """``w_ij`` in R per edge."""

    def __init__(self, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs, **kwargs):
        super().__init__(arrays, state_dim, rngs=rngs, **kwargs)
        self.weights = nnx.Param(self._init_scale * jax.random.normal(rngs.params(), (arrays.num_edges,)))

    def _edge_weights(self):
        return self.weights[...][:, None]


@register_interaction("vector")
class VectorInteraction(Interaction):
    """``w_ij`` in R^d per edge, applied elementwise over the state channels."""

    def __init__(self, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs, **kwargs):
        super().__init__(arrays, state_dim, rngs=rngs, **kwargs)
        self.weights = nnx.Param(
            self._init_scale * jax.random.normal(rngs.params(), (arrays.num_edges, state_dim))
        )

    def _edge_weights(self):
        return self.weights[...]


@register_interaction("lowrank")
class LowRankInteraction(Interaction):
    """NGC low-rank weights ``w_ij = <u_i, v_j> / sqrt(r)`` on the graph's edges."""

    def __init__(self, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs, rank: int = 8, **kwargs):
        super().__init__(arrays, state_dim, rngs=rngs, **kwargs)
        self.rank = int(rank)
        if self.rank < 1:
            raise InteractionError(f"lowrank interaction needs rank >= 1, got {rank}.")
        scale = math.sqrt(self._init_scale)
        n = arrays.num_neurons
        self.receiver_embedding = nnx.Param(scale * jax.random.normal(rngs.params(), (n, self.rank)))
        self.sender_embedding = nnx.Param(scale * jax.random.normal(rngs.params(), (n, self.rank)))

    def _edge_weights(self):
        u = self.receiver_embedding[...][self.arrays.array("receivers")]
        v = self.sender_embedding[...][self.arrays.array("senders")]
        return (jnp.sum(u * v, -1) / math.sqrt(self.rank))[:, None]


@register_interaction("plastic")
class PlasticInteraction(Interaction):
    """State-dependent weights ``w_ij = w0_ij * sigmoid(<q(h_i), k(h_j)> / sqrt(r) + beta)``."""

    static_weights = False

    def __init__(self, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs, rank: int = 4, **kwargs):
        super().__init__(arrays, state_dim, rngs=rngs, **kwargs)
        self.rank = int(rank)
        if self.rank < 1:
            raise InteractionError(f"plastic interaction needs rank >= 1, got {rank}.")
        self.weights = nnx.Param(self._init_scale * jax.random.normal(rngs.params(), (arrays.num_edges,)))
        init = nnx.initializers.lecun_normal()
        self.query = nnx.Param(init(rngs.params(), (state_dim, self.rank)))
        self.key = nnx.Param(init(rngs.params(), (state_dim, self.rank)))
        self.bias = nnx.Param(jnp.zeros(()))

    def _edge_weights(self):
        return self.weights[...][:, None]

    def _qk(self, h):
        """Query and key rows ``[N, r * B]`` of state rows ``h``."""
        n = h.shape[0]
        maps = jnp.stack([self.query[...].T / math.sqrt(self.rank), self.key[...].T])  # [2, r, d]
        q, k = (channel_map(jnp.broadcast_to(m, (n,) + m.shape), h) for m in maps)
        return q, k

    def _sparse_messages(self, prepared, h, x):
        q, k = self._qk(h)
        n, r = h.shape[0], self.rank
        index = self.arrays.array("in_index")
        w = []
        for slot in range(index.shape[0]):
            logits = jnp.sum((q * k[index[slot]]).reshape(n, r, -1), axis=1)  # [N, B]
            w.append(jnp.tile(prepared.w[slot] * jax.nn.sigmoid(logits + self.bias[...]), (1, self.state_dim)))
        w_out = self.arrays.slots_to_out(jnp.stack(w))
        return aggregate(index, self.arrays.array("out_index"), x, tuple(w), tuple(w_out))

    def _dense_messages(self, prepared, h, x):
        q, k = self._qk(h)
        n, r, d = h.shape[0], self.rank, self.state_dim
        logits = jnp.einsum("irb,jrb->jib", q.reshape(n, r, -1), k.reshape(n, r, -1))  # [N_send, N_recv, B]
        w = prepared.w * jax.nn.sigmoid(logits + self.bias[...])
        return jnp.einsum("jib,jcb->icb", w, x.reshape(n, d, -1)).reshape(x.shape)


def make_interaction(kind: str, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs, **options) -> Interaction:
    """Builds interaction ``kind`` (one of `interaction_names()`) on the graph ``arrays`` for d = ``state_dim``.

    Options: ``path`` ("auto" | "sparse" | "dense"), ``phi`` (one of `PHIS`), ``edge_gate``
    (bool), ``gate_penalty`` (float), ``gate_init_logit`` (float, default 3.0: every gate
    starts at sigmoid(3) ~ 0.95, nearly open), and ``rank`` for ``lowrank`` (default 8) /
    ``plastic`` (default 4).
    """
    cls = _INTERACTIONS.get(kind)
    check_options(f"Interaction '{kind}'", options, keyword_options(cls, fixed=PART_ARGUMENTS), InteractionError)
    try:
        return cls(arrays, state_dim, rngs=rngs, **options)
    except TypeError as err:
        raise InteractionError(f"Bad option for interaction '{kind}': {err}") from err
