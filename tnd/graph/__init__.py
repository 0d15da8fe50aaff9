"""G: neuron graphs and the topology registry."""

from tnd.graph.neuron_graph import GraphError, NeuronGraph
from tnd.graph.topologies import (
    NCP_TYPE_NAMES,
    TopologyError,
    build_topology,
    register_topology,
    topology_names,
)

__all__ = [
    "GraphError",
    "NCP_TYPE_NAMES",
    "NeuronGraph",
    "TopologyError",
    "build_topology",
    "register_topology",
    "topology_names",
]
