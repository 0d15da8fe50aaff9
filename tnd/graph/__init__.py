"""G: neuron graphs and the topology registry."""

from tnd.graph.neuron_graph import GraphError, NeuronGraph

__all__ = ["GraphError", "NeuronGraph"]
