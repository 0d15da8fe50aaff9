"""The neuron graph of the graph-based models (``tnd``, ``sparse_rnn``, the wired ``cfc``).

`GraphOptions` declares the graph options once for every graph-based model and resolves
them (a `NeuronGraph`, or a topology name with its options) into the graph, the same way
for every model, so equal options give an identical graph; `GraphMask` holds a structural 0/1 mask in a model's state (never
trained, never counted as a parameter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flax import nnx

from tnd.graph import NeuronGraph, build_topology
from tnd.registry import check_options


class GraphMask(nnx.Variable):
    """A structural 0/1 mask: part of the model's state, never trained, never counted."""


@dataclasses.dataclass(frozen=True)
class GraphOptions:
    """The graph options every graph-based model takes, declared once.

    ``graph`` (a `NeuronGraph`) wins over a ``topology`` name (any of
    ``tnd.graph.topology_names()``) built with ``topology_options``, ``graph_seed`` and
    ``num_sensory``/``num_motor`` (None: ``max(1, N // 8)``).
    """

    topology: str | None = None
    topology_options: Mapping[str, Any] | None = None
    graph_seed: int = 0
    num_sensory: int | None = None
    num_motor: int | None = None
    graph: NeuronGraph | None = None

    @classmethod
    def parse(cls, model: str, options: Mapping[str, Any]) -> GraphOptions:
        """From a builder's ``**graph_options``; an unknown name fails with the valid ones."""
        check_options(f"Model '{model}'", options, GRAPH_OPTIONS, ValueError)
        return cls(**options)

    @property
    def given(self) -> bool:
        """True when a graph or a topology was asked for."""
        return self.graph is not None or self.topology is not None

    def resolve(self, model: str, num_neurons: int | None, *, default_topology: str = "layered_ncp",
                default_neurons: int = 64) -> NeuronGraph:
        """The neuron graph: ``graph`` itself, or ``build_topology(...)`` with N neurons.

        Raises ValueError when both a graph and a different ``num_neurons`` are given.
        """
        graph = self.graph
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
            self.topology or default_topology, n, seed=self.graph_seed, num_sensory=self.num_sensory,
            num_motor=self.num_motor, **dict(self.topology_options or {}),
        )


GRAPH_OPTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(GraphOptions))
