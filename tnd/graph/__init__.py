"""G: neuron graphs, the topology registry, and graphs as arrays a program takes as data."""

from tnd.graph.arrays import GraphArrays, GraphData, GraphShape, neighbour_arrays
from tnd.graph.neuron_graph import GraphError, NeuronGraph
from tnd.graph.topologies import (
    NCP_TYPE_NAMES,
    TopologyError,
    build_topology,
    register_topology,
    topology_names,
)

__all__ = [
    "GraphArrays",
    "GraphData",
    "GraphError",
    "GraphShape",
    "NCP_TYPE_NAMES",
    "NeuronGraph",
    "TopologyError",
    "build_topology",
    "neighbour_arrays",
    "register_topology",
    "topology_names",
]
