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
plasticity): ``sparse`` -- fixed fan-in neighbour lists (`tnd.interaction.neighbours`), cost
O(N K B d) with K the max in-degree -- and ``dense`` -- a masked ``[N, N]`` weight matrix and
one matmul, cost O(N^2 B d). ``path="auto"`` picks with `choose_path`.

Optional learnable **edge gate**: ``w_ij <- w_ij * sigmoid(a_ij)`` with one logit per edge.
`regularization()` returns ``gate_penalty * mean_ij sigmoid(a_ij)`` (an L1 penalty on the
gates); add it to the loss so training prunes edges; `kept_edges()` reads which survive.

Weights are *prepared* once per sequence (`prepare` -> `PreparedWeights`, outside the time
scan: parameter layout changes are loop-invariant) and applied per step with
`messages(prepared, h)`.
Internal state layout is neuron-major ``[N, B, d]`` so a gathered neighbour is one
contiguous ``B*d`` row.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from tnd.graph.neuron_graph import NeuronGraph
from tnd.interaction.neighbours import NeighbourLists, aggregate, neighbour_lists, slot_dot

PATHS = ("auto", "sparse", "dense")
PHIS = {
    "tanh": jnp.tanh,
    "identity": lambda x: x,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "gelu": jax.nn.gelu,
}

# auto rule, fitted to `tnd-bench --suite core --core-full` (Erdos-Renyi graphs, scalar
# weights, B = 16, on a 2-core CPU; figures in docs/benchmarks.md): the sparse path does N*K slot
# operations at about 1/ratio of the dense matmul's per-operation rate, so it wins when
# K * ratio < N. The dense matmul gains more from wider rows than the gathers do, so the
# ratio grows with d: break-even measured near N/K = 8 at d = 4 and N/K = 12 at d = 16
# (linear in between, held at the measured ends outside).
SPARSE_COST_RATIO = {4: 8.0, 16: 12.0}
MIN_SPARSE_NEURONS = 256


def sparse_cost_ratio(state_dim: int) -> float:
    """The per-operation cost of the sparse path relative to dense at ``d = state_dim``."""
    (d0, r0), (d1, r1) = sorted(SPARSE_COST_RATIO.items())
    d = min(max(int(state_dim), d0), d1)
    return r0 + (r1 - r0) * (d - d0) / (d1 - d0)


class InteractionError(ValueError):
    """An invalid interaction option (unknown kind, path, phi, ...)."""


def _check_choice(what: str, value: str, valid) -> str:
    if value not in valid:
        raise InteractionError(f"Unknown {what} '{value}'. Valid values: {', '.join(valid)}.")
    return value


def choose_path(graph: NeuronGraph, path: str = "auto", chunk: int = 4, state_dim: int = 4) -> str:
    """Resolves ``path``: ``"sparse"``/``"dense"`` as given; ``"auto"`` by size, density and d.

    Rule: sparse iff ``N >= MIN_SPARSE_NEURONS`` and ``K * sparse_cost_ratio(d) < N`` where K
    is the padded max in-degree (the sparse path's per-neuron work). Dense for small graphs
    (one small matmul beats any gather) and for dense-ish graphs (matmul's higher per-op
    rate). Fitted on a 2-core CPU (docs/benchmarks.md; measured by experiments/bench/core.py).
    """
    _check_choice("path", path, PATHS)
    if path != "auto":
        return path
    n = graph.num_neurons
    k = neighbour_lists(graph, chunk).fan_in
    return "sparse" if n >= MIN_SPARSE_NEURONS and k * sparse_cost_ratio(state_dim) < n else "dense"


_INTERACTIONS: dict[str, type] = {}


def register_interaction(kind: str):
    """Class decorator: registers an `Interaction` subclass as ``interaction=kind``."""
    if not isinstance(kind, str) or not kind:
        raise InteractionError(f"register_interaction needs a non-empty name, got {kind!r}.")

    def decorator(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Interaction)):
            raise InteractionError(f"register_interaction('{kind}') needs an Interaction subclass, got {cls!r}.")
        cls.kind = kind
        _INTERACTIONS[kind] = cls
        return cls

    return decorator


def interaction_names() -> tuple[str, ...]:
    """The registered interaction kinds, built-ins first."""
    return tuple(_INTERACTIONS)


@struct.dataclass
class PreparedWeights:
    """Loop-invariant interaction weights in the layout of one execution path.

    ``w``: ``[K, N, *W]`` slot layout on the ``sparse`` path, ``[N_send, N_recv, *W]`` on
    the ``dense`` path (``W`` = ``(1, 1)`` scalar or ``(1, d)`` vector per edge). ``path`` is
    static (part of the tree structure), so a jitted step compiles one path.
    """

    w: jax.Array
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

    Subclasses implement ``_edge_weights() -> [E, *W]`` (static per-edge weights in the
    graph's sorted edge order; ``W = (1, 1)`` scalar or ``(1, d)`` vector) and may override
    `_sparse_messages` / `_dense_messages` (the plastic variant does).
    """

    kind = "base"

    def __init__(
        self, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs, path: str = "auto",
        phi: str = "tanh", edge_gate: bool = False, gate_penalty: float = 1e-3, gate_init_logit: float = 3.0,
        chunk: int = 4,
    ):
        self.graph = graph
        self.state_dim = state_dim
        self.phi_name = _check_choice("phi", phi, tuple(PHIS))
        self.requested_path = _check_choice("path", path, PATHS)
        self.path = choose_path(graph, path, chunk, state_dim)
        self.lists: NeighbourLists = neighbour_lists(graph, chunk)
        self.gate = (
            EdgeGate(graph.num_edges, init_logit=float(gate_init_logit), penalty=gate_penalty) if edge_gate else None
        )
        self._init_scale = 1.0 / math.sqrt(max(1.0, float(graph.in_degree().mean())))

    # -------------------------------------------------------------- public API
    def phi(self, h: jax.Array) -> jax.Array:
        return PHIS[self.phi_name](h)

    def edge_weights(self) -> jax.Array:
        """Static per-edge weights ``[E, *W]`` (gate applied), in the graph's edge order."""
        w = self._edge_weights()
        if self.gate is not None:
            w = w * self.gate.gates().reshape((-1,) + (1,) * (w.ndim - 1))
        return w

    def prepare(self, path: str | None = None) -> PreparedWeights:
        """Loop-invariant weights for ``path`` (default: the resolved path)."""
        path = path or self.path
        w = self.edge_weights()
        if path == "sparse":
            return PreparedWeights(self.lists.to_slots(w), "sparse")
        return PreparedWeights(self.lists.to_dense(w), "dense")

    def messages(self, prepared: PreparedWeights, h: jax.Array) -> jax.Array:
        """Messages ``[N, B, d]`` from states ``h: [N, B, d]`` (neuron-major)."""
        x = self.phi(h)
        if prepared.sparse:
            return self._sparse_messages(prepared, h, x)
        return self._dense_messages(prepared, h, x)

    def __call__(self, h: jax.Array, path: str | None = None) -> jax.Array:
        """Convenience: messages for batch-major states ``h: [B, N, d]`` -> ``[B, N, d]``."""
        m = self.messages(self.prepare(path), jnp.swapaxes(h, 0, 1))
        return jnp.swapaxes(m, 0, 1)

    def regularization(self) -> jax.Array:
        return self.gate.regularization() if self.gate is not None else jnp.zeros(())

    def kept_edges(self, threshold: float = 0.5) -> np.ndarray:
        """Boolean ``[E]``: edges whose gate exceeds ``threshold`` (all True without a gate)."""
        if self.gate is None:
            return np.ones(self.graph.num_edges, bool)
        return np.asarray(self.gate.gates() > threshold)

    # -------------------------------------------------------------- paths
    def _edge_weights(self) -> jax.Array:
        raise NotImplementedError

    def _sparse_messages(self, prepared, h, x):
        return aggregate(self.lists, x, prepared.w)

    def _dense_messages(self, prepared, h, x):
        w = prepared.w  # [N_send, N_recv, 1, 1 | d]
        if w.shape[-1] == 1:  # one [N, N] x [N, B*d] matmul
            return (w[..., 0, 0].T @ x.reshape(x.shape[0], -1)).reshape(x.shape)
        return jnp.einsum("jic,jbc->ibc", w[..., 0, :], x)


@register_interaction("scalar")
class ScalarInteraction(Interaction):
    """``w_ij`` in R per edge."""


    def __init__(self, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs, **kwargs):
        super().__init__(graph, state_dim, rngs=rngs, **kwargs)
        self.weights = nnx.Param(self._init_scale * jax.random.normal(rngs.params(), (graph.num_edges,)))

    def _edge_weights(self):
        return self.weights[...][:, None, None]


@register_interaction("vector")
class VectorInteraction(Interaction):
    """``w_ij`` in R^d per edge, applied elementwise over the state channels."""


    def __init__(self, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs, **kwargs):
        super().__init__(graph, state_dim, rngs=rngs, **kwargs)
        self.weights = nnx.Param(
            self._init_scale * jax.random.normal(rngs.params(), (graph.num_edges, state_dim))
        )

    def _edge_weights(self):
        return self.weights[...][:, None, :]


@register_interaction("lowrank")
class LowRankInteraction(Interaction):
    """NGC low-rank weights ``w_ij = <u_i, v_j> / sqrt(r)`` on the graph's edges."""


    def __init__(self, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs, rank: int = 8, **kwargs):
        super().__init__(graph, state_dim, rngs=rngs, **kwargs)
        self.rank = int(rank)
        if self.rank < 1:
            raise InteractionError(f"lowrank interaction needs rank >= 1, got {rank}.")
        scale = math.sqrt(self._init_scale)
        self.receiver_embedding = nnx.Param(scale * jax.random.normal(rngs.params(), (graph.num_neurons, self.rank)))
        self.sender_embedding = nnx.Param(scale * jax.random.normal(rngs.params(), (graph.num_neurons, self.rank)))

    def _edge_weights(self):
        u = self.receiver_embedding[...][self.graph.receivers]
        v = self.sender_embedding[...][self.graph.senders]
        return (jnp.sum(u * v, -1) / math.sqrt(self.rank))[:, None, None]

    def prepare(self, path: str | None = None) -> PreparedWeights:
        path = path or self.path
        if path == "dense" and self.gate is None:  # no scatter: mask the outer product
            u, v = self.receiver_embedding[...], self.sender_embedding[...]
            w = (v @ u.T) / math.sqrt(self.rank) * self.graph.adjacency()
            return PreparedWeights(w[:, :, None, None], "dense")
        return super().prepare(path)


@register_interaction("plastic")
class PlasticInteraction(Interaction):
    """State-dependent weights ``w_ij = w0_ij * sigmoid(<q(h_i), k(h_j)> / sqrt(r) + beta)``."""


    def __init__(self, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs, rank: int = 4, **kwargs):
        super().__init__(graph, state_dim, rngs=rngs, **kwargs)
        self.rank = int(rank)
        if self.rank < 1:
            raise InteractionError(f"plastic interaction needs rank >= 1, got {rank}.")
        self.weights = nnx.Param(self._init_scale * jax.random.normal(rngs.params(), (graph.num_edges,)))
        init = nnx.initializers.lecun_normal()
        self.query = nnx.Param(init(rngs.params(), (state_dim, self.rank)))
        self.key = nnx.Param(init(rngs.params(), (state_dim, self.rank)))
        self.bias = nnx.Param(jnp.zeros(()))

    def _edge_weights(self):
        return self.weights[...][:, None, None]

    def _qk(self, h):
        scale = 1.0 / math.sqrt(self.rank)
        return jnp.einsum("nbd,dr->nbr", h, self.query[...]) * scale, jnp.einsum("nbd,dr->nbr", h, self.key[...])

    def _sparse_messages(self, prepared, h, x):
        q, k = self._qk(h)
        logits = slot_dot(self.lists, q, k, (h.shape[1], 1))  # [K, N, B, 1]
        w = prepared.w * jax.nn.sigmoid(logits + self.bias[...])
        return aggregate(self.lists, x, w)

    def _dense_messages(self, prepared, h, x):
        q, k = self._qk(h)
        logits = jnp.einsum("ibr,jbr->jib", q, k)  # [N_send, N_recv, B]
        w = prepared.w[..., 0, 0][..., None] * jax.nn.sigmoid(logits + self.bias[...])
        return jnp.einsum("jib,jbc->ibc", w, x)


def make_interaction(kind: str, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs, **options) -> Interaction:
    """Builds interaction ``kind`` (one of `interaction_names()`) on ``graph`` for d = ``state_dim``.

    Options: ``path`` ("auto" | "sparse" | "dense"), ``phi`` (one of `PHIS`), ``edge_gate``
    (bool), ``gate_penalty`` (float), ``gate_init_logit`` (float, default 3.0: every gate
    starts at sigmoid(3) ~ 0.95, nearly open), ``chunk`` (slots per fused gather), and ``rank`` for
    ``lowrank`` (default 8) / ``plastic`` (default 4).
    """
    cls = _INTERACTIONS[_check_choice("interaction", kind, interaction_names())]
    try:
        return cls(graph, state_dim, rngs=rngs, **options)
    except TypeError as err:
        raise InteractionError(f"Bad option for interaction '{kind}': {err}") from err
