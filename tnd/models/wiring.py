"""The neuron graph of the graph-based models (``tnd``, ``sparse_rnn``, the wired ``cfc``).

`resolve_graph` turns a builder's graph options (a `NeuronGraph`, or a topology name with
its options) into the graph, the same way for every model, so equal options give an
identical graph; `GraphMask` holds a structural 0/1 mask in a model's state (never
trained, never counted as a parameter).
"""

from __future__ import annotations

from typing import Any

from flax import nnx

from tnd.graph import NeuronGraph, build_topology


class GraphMask(nnx.Variable):
    """A structural 0/1 mask: part of the model's state, never trained, never counted."""


def resolve_graph(
    model: str,
    num_neurons: int | None,
    *,
    graph: NeuronGraph | None = None,
    topology: str = "layered_ncp",
    topology_options: dict[str, Any] | None = None,
    graph_seed: int = 0,
    num_sensory: int | None = None,
    num_motor: int | None = None,
    default_neurons: int = 64,
) -> NeuronGraph:
    """The neuron graph of a graph-based model: ``graph`` itself, or ``build_topology(...)``.

    Raises ValueError when both a graph and a different ``num_neurons`` are given.
    """
    if graph is not None:
        if not isinstance(graph, NeuronGraph):
            raise ValueError(f"{model}: graph must be a tnd.graph.NeuronGraph, got {type(graph).__name__}.")
        if num_neurons is not None and int(num_neurons) != graph.num_neurons:
            raise ValueError(
                f"{model}: num_neurons={num_neurons} disagrees with the given graph's "
                f"{graph.num_neurons} neurons; pass one or the other."
            )
        return graph
    n = default_neurons if num_neurons is None else int(num_neurons)
    return build_topology(
        topology, n, seed=graph_seed, num_sensory=num_sensory, num_motor=num_motor, **dict(topology_options or {})
    )
