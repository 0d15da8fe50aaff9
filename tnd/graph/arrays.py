"""The neuron graph as data: index arrays a jitted program takes as input (jraph's pattern).

A `NeuronGraph` is validated NumPy on the host. A model that runs on it keeps a
`GraphArrays`: the same graph as integer arrays held in `GraphData` variables, part of the
model's state rather than of its compiled structure. Two graphs with the same *shape*
(`GraphShape`: neurons, edges, sensory and motor counts, padded fan-in and fan-out) therefore
share one compiled program, and the seeds of a topology stack with ``vmap``, each with its
own graph.

Neighbour lists (what the sparse interaction kernels gather along), neuron-major so that a
gathered neighbour is one contiguous row of the state:

  in_index  ``[K_in, N]``   sender of in-slot k of receiver n; a pad slot points at neuron 0
  in_edge   ``[K_in, N]``   edge id of the slot (position in the graph's sorted edges; ``E`` = pad)
  out_index ``[K_out, N]``  receiver of out-slot k of sender j; a pad slot points at neuron 0
  out_slot  ``[K_out, N]``  flat in-slot ``k * N + n`` of that edge (``K_in * N`` = pad)

Pad slots carry weight 0 (edge values are read through ``in_edge`` with a zero row appended),
so they add exact zeros. ``fan_in``/``fan_out`` may be padded beyond the largest in-/out-degree
to give several graphs one shape.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.graph.neuron_graph import NeuronGraph


class GraphData(nnx.Variable):
    """Integer graph data in a model's state: never trained, never counted, not checkpointed
    (it is rebuilt from the run's config), stacked per seed like parameters."""


@dataclasses.dataclass(frozen=True)
class GraphShape:
    """The static shape of a graph's arrays: what a compiled program depends on."""

    num_neurons: int
    num_edges: int
    num_sensory: int
    num_motor: int
    fan_in: int
    fan_out: int

    @classmethod
    def of(cls, graph: NeuronGraph) -> GraphShape:
        n = graph.num_neurons
        return cls(n, graph.num_edges, int(graph.sensory.size), int(graph.motor.size),
                   int(np.bincount(graph.receivers, minlength=n).max()), int(np.bincount(graph.senders, minlength=n).max()))


def neighbour_arrays(graph: NeuronGraph, fan_in: int | None = None, fan_out: int | None = None) -> dict[str, np.ndarray]:
    """The padded in- and out-neighbour lists of ``graph`` (NumPy int32; O(E))."""
    shape = GraphShape.of(graph)
    n, e = graph.num_neurons, graph.num_edges
    k_in, k_out = max(shape.fan_in, int(fan_in or 0)), max(shape.fan_out, int(fan_out or 0))
    senders, receivers = graph.senders.astype(np.int64), graph.receivers.astype(np.int64)
    in_deg = np.bincount(receivers, minlength=n)
    slot = np.arange(e) - np.concatenate([[0], np.cumsum(in_deg)[:-1]])[receivers]  # edges sorted by receiver
    in_index, in_edge = np.zeros((k_in, n), np.int32), np.full((k_in, n), e, np.int32)
    in_index[slot, receivers], in_edge[slot, receivers] = senders, np.arange(e)
    order = np.lexsort((receivers, senders))  # edges sorted by sender
    out_deg = np.bincount(senders, minlength=n)
    out_pos = np.arange(e) - np.concatenate([[0], np.cumsum(out_deg)[:-1]])[senders[order]]
    out_index, out_slot = np.zeros((k_out, n), np.int32), np.full((k_out, n), k_in * n, np.int32)
    out_index[out_pos, senders[order]] = receivers[order]
    out_slot[out_pos, senders[order]] = slot[order] * n + receivers[order]
    return {"in_index": in_index, "in_edge": in_edge, "out_index": out_index, "out_slot": out_slot}


class GraphArrays(nnx.Module):
    """A `NeuronGraph` held as `GraphData` arrays, plus its static `GraphShape`.

    Attributes (each a `GraphData` of int32): ``senders``, ``receivers`` ``[E]``, ``sensory``
    ``[S]``, ``motor`` ``[M]``, ``neuron_types`` ``[N]`` and the neighbour lists of
    `neighbour_arrays`. ``graph`` rebuilds the `NeuronGraph` on the host.
    """

    def __init__(self, graph: NeuronGraph, *, fan_in: int | None = None, fan_out: int | None = None):
        lists = neighbour_arrays(graph, fan_in, fan_out)
        self.shape = dataclasses.replace(GraphShape.of(graph), fan_in=lists["in_index"].shape[0],
                                         fan_out=lists["out_index"].shape[0])
        self.name = graph.name
        self.num_types = graph.num_types
        default_labels = graph.labels == tuple(range(graph.num_neurons))
        self.labels = None if default_labels else graph.labels
        for key in ("senders", "receivers", "sensory", "motor", "neuron_types"):
            setattr(self, key, GraphData(jnp.asarray(getattr(graph, key), jnp.int32)))
        for key, value in lists.items():
            setattr(self, key, GraphData(jnp.asarray(value)))

    @property
    def num_neurons(self) -> int:
        return self.shape.num_neurons

    @property
    def num_edges(self) -> int:
        return self.shape.num_edges

    def array(self, key: str) -> jax.Array:
        return getattr(self, key)[...]

    @property
    def graph(self) -> NeuronGraph:
        """The `NeuronGraph` these arrays hold (host side: the arrays must be concrete)."""
        get = lambda key: np.asarray(self.array(key))  # noqa: E731
        return NeuronGraph.from_edges(
            self.num_neurons, get("senders"), get("receivers"), get("sensory"), get("motor"),
            neuron_types=get("neuron_types"), labels=self.labels, name=self.name,
        )

    def edges_to_slots(self, edge_values: jax.Array) -> jax.Array:
        """Edge-ordered ``[E, ...]`` values -> in-slot layout ``[K_in, N, ...]`` (0 in pad slots)."""
        padded = jnp.concatenate([edge_values, jnp.zeros((1,) + edge_values.shape[1:], edge_values.dtype)])
        return padded[self.array("in_edge")]

    def slots_to_out(self, slot_values: jax.Array) -> jax.Array:
        """In-slot ``[K_in, N, ...]`` values -> out-slot layout ``[K_out, N, ...]`` (0 in pad slots)."""
        flat = slot_values.reshape((-1,) + slot_values.shape[2:])
        flat = jnp.concatenate([flat, jnp.zeros((1,) + flat.shape[1:], flat.dtype)])
        return flat[self.array("out_slot")]

    def edges_to_dense(self, edge_values: jax.Array) -> jax.Array:
        """Edge-ordered ``[E, ...]`` values -> ``[N_send, N_recv, ...]`` (0 off the graph)."""
        n = self.num_neurons
        dense = jnp.zeros((n, n) + edge_values.shape[1:], edge_values.dtype)
        return dense.at[self.array("senders"), self.array("receivers")].set(edge_values, unique_indices=True)
