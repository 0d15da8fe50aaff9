"""G of the triple: the neuron graph.

A `NeuronGraph` is an immutable, validated description of which neuron talks to which.
Edges are directed ``senders[e] -> receivers[e]`` and stored as NumPy integer arrays so
that they are compile-time constants under ``jax.jit`` (the graph is static; only neuron
states and weights are traced). Edges are kept sorted by (receiver, sender), which lets
the interaction operators build neighbour lists and sorted segment sums directly.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Hashable, Iterable, Iterator, Sequence

import networkx as nx
import numpy as np


class GraphError(ValueError):
    """A neuron graph is malformed; the message says what is wrong and how to fix it."""


def _index_array(values: Iterable[int] | np.ndarray, what: str) -> np.ndarray:
    """A 1-D int64 array of neuron indices (range-checked by the caller before int32)."""
    array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    if array.ndim != 1:
        raise GraphError(f"{what} must be a flat (1-D) list of neuron indices, got an array of shape {array.shape}.")
    if array.size == 0:
        return np.zeros((0,), np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise GraphError(f"{what} must be integer neuron indices, got dtype {array.dtype}.")
    return array.astype(np.int64)


def _checked_num_neurons(num_neurons: int, name: str) -> int:
    """``num_neurons`` as a Python int; refuses anything but a positive integer (bools too)."""
    if isinstance(num_neurons, (bool, np.bool_)) or not isinstance(num_neurons, (int, np.integer)) or num_neurons <= 0:
        raise GraphError(
            f"Graph '{name}': num_neurons must be a positive integer, got {num_neurons!r}."
        )
    return int(num_neurons)


def _sorted_edges(
    num_neurons: int, senders: Sequence[int] | np.ndarray, receivers: Sequence[int] | np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The edge lists as ``[E]`` int32 ``(senders, receivers)`` sorted by (receiver, sender),
    after checking they are non-empty, of equal length, in range and free of duplicates."""
    senders = _index_array(senders, "senders")
    receivers = _index_array(receivers, "receivers")
    if senders.shape != receivers.shape:
        raise GraphError(
            f"Graph '{name}': senders and receivers must have the same length, "
            f"got {senders.shape[0]} and {receivers.shape[0]}."
        )
    if senders.size == 0:
        raise GraphError(f"Graph '{name}' is empty: it has no edges. Add at least one edge.")
    for what, idx in (("senders", senders), ("receivers", receivers)):
        bad = idx[(idx < 0) | (idx >= num_neurons)]
        if bad.size:
            raise GraphError(
                f"Graph '{name}': edge index {int(bad[0])} in {what} is out of range "
                f"for {num_neurons} neurons (valid: 0..{num_neurons - 1})."
            )
    senders, receivers = senders.astype(np.int32), receivers.astype(np.int32)  # in range: no wrap
    order = np.lexsort((senders, receivers))
    senders, receivers = senders[order], receivers[order]
    keys = receivers.astype(np.int64) * num_neurons + senders
    dup = np.nonzero(keys[1:] == keys[:-1])[0]
    if dup.size:
        e = dup[0]
        raise GraphError(
            f"Graph '{name}': duplicate edge {int(senders[e])} -> {int(receivers[e])}. "
            "Each directed edge may appear once; merge duplicates into one edge."
        )
    return senders, receivers


def _roles(
    num_neurons: int, sensory: Sequence[int] | np.ndarray, motor: Sequence[int] | np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The sorted, distinct int64 indices of the sensory and of the motor neurons; refuses an
    empty role or an index out of range."""
    sensory_idx = np.unique(_index_array(sensory, "sensory"))
    motor_idx = np.unique(_index_array(motor, "motor"))
    for what, idx in (("sensory", sensory_idx), ("motor", motor_idx)):
        if idx.size == 0:
            raise GraphError(
                f"Graph '{name}' has no {what} neuron: pass at least one {what} neuron index."
            )
        if idx[0] < 0 or idx[-1] >= num_neurons:
            bad = idx[(idx < 0) | (idx >= num_neurons)][0]
            raise GraphError(
                f"Graph '{name}': {what} neuron {int(bad)} is out of range for {num_neurons} neurons."
            )
    return sensory_idx, motor_idx


def _type_ids(num_neurons: int, neuron_types: Sequence[int] | np.ndarray | None, name: str) -> np.ndarray:
    """``[N]`` non-negative type ids (all 0 when ``neuron_types`` is None)."""
    if neuron_types is None:
        return np.zeros((num_neurons,), np.int32)
    types = _index_array(neuron_types, "neuron_types")
    if types.shape != (num_neurons,) or (types < 0).any():
        raise GraphError(
            f"Graph '{name}': neuron_types must be {num_neurons} non-negative integers, "
            f"got shape {types.shape}."
        )
    return types


def _unique_labels(num_neurons: int, labels: Sequence[Hashable] | None, name: str) -> tuple[Hashable, ...]:
    """One distinct label per neuron (default: the indices ``0 .. N-1``)."""
    if labels is None:
        labels = tuple(range(num_neurons))
    labels = tuple(labels)
    if len(labels) != num_neurons:
        raise GraphError(f"Graph '{name}': {len(labels)} labels for {num_neurons} neurons.")
    if len(set(labels)) != len(labels):
        seen: set = set()
        twice = next(label for label in labels if label in seen or seen.add(label))
        raise GraphError(f"Graph '{name}': node label {twice!r} is used twice; labels must be unique.")
    return labels


@dataclasses.dataclass(frozen=True, eq=False)
class NeuronGraph:
    """A directed neuron graph with sensory (input) and motor (read-out) neurons.

    Attributes:
      num_neurons: N.
      senders, receivers: ``[E]`` int32, edge ``e`` carries ``h[senders[e]]`` to
        ``receivers[e]``; sorted by (receiver, sender), no duplicates.
      sensory: sorted ``[S]`` int32 indices of neurons that receive the input.
      motor: sorted ``[M]`` int32 indices of neurons that are read out.
      neuron_types: ``[N]`` int32 type id per neuron (0 for all when untyped).
      labels: the original node label of each neuron (for networkx round trips).
      name: a human-readable name, e.g. the topology it was built from.
    """

    num_neurons: int
    senders: np.ndarray
    receivers: np.ndarray
    sensory: np.ndarray
    motor: np.ndarray
    neuron_types: np.ndarray
    labels: tuple[Hashable, ...]
    name: str = "custom"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_edges(
        cls,
        num_neurons: int,
        senders: Sequence[int] | np.ndarray,
        receivers: Sequence[int] | np.ndarray,
        sensory: Sequence[int] | np.ndarray,
        motor: Sequence[int] | np.ndarray,
        neuron_types: Sequence[int] | np.ndarray | None = None,
        labels: Sequence[Hashable] | None = None,
        name: str = "custom",
    ) -> "NeuronGraph":
        """Builds and validates a graph from integer edge lists (``senders[e] -> receivers[e]``)."""
        num_neurons = _checked_num_neurons(num_neurons, name)
        senders, receivers = _sorted_edges(num_neurons, senders, receivers, name)
        sensory_idx, motor_idx = _roles(num_neurons, sensory, motor, name)
        types = _type_ids(num_neurons, neuron_types, name)
        labels = _unique_labels(num_neurons, labels, name)
        graph = cls(num_neurons, senders, receivers, sensory_idx.astype(np.int32), motor_idx.astype(np.int32),
                    types.astype(np.int32), labels, name)
        graph._check_motor_reachable()
        for array in (graph.senders, graph.receivers, graph.sensory, graph.motor, graph.neuron_types):
            array.setflags(write=False)  # the stored arrays: a graph is immutable
        return graph

    @classmethod
    def from_networkx(
        cls,
        graph: nx.Graph,
        sensory: Iterable[Hashable] | None = None,
        motor: Iterable[Hashable] | None = None,
        neuron_type_attr: str = "type",
        name: str | None = None,
    ) -> "NeuronGraph":
        """Converts any networkx (Di)Graph with hashable node labels.

        Undirected edges become two directed edges. When ``sensory``/``motor`` are not
        given, nodes whose attribute ``sensory``/``motor`` is true are used. The node
        attribute ``neuron_type_attr`` (any hashable values) becomes integer neuron types.
        """
        name = name or graph.name or "networkx"
        if graph.number_of_nodes() == 0:
            raise GraphError(f"Graph '{name}' is empty: the networkx graph has no nodes.")
        if isinstance(graph, (nx.MultiGraph, nx.MultiDiGraph)):
            counts: dict = {}
            for u, v in graph.edges():
                counts[(u, v)] = counts.get((u, v), 0) + 1
            for (u, v), c in counts.items():
                if c > 1:
                    raise GraphError(
                        f"Graph '{name}': duplicate edge {u!r} -> {v!r} ({c} parallel edges). "
                        "Use nx.DiGraph or merge parallel edges."
                    )
        labels = list(graph.nodes())
        index = {label: i for i, label in enumerate(labels)}
        edges = [(index[u], index[v]) for u, v in graph.edges()]
        if not graph.is_directed():
            edges += [(v, u) for u, v in edges if u != v]
        senders = np.array([u for u, _ in edges], np.int32)
        receivers = np.array([v for _, v in edges], np.int32)

        def resolve(nodes: Iterable[Hashable] | None, attr: str) -> np.ndarray:
            if nodes is None:
                nodes = [n for n, data in graph.nodes(data=True) if data.get(attr)]
            missing = [n for n in nodes if n not in index]
            if missing:
                raise GraphError(f"Graph '{name}': {attr} node {missing[0]!r} is not in the graph.")
            return np.array([index[n] for n in nodes], np.int32)

        raw_types = [graph.nodes[n].get(neuron_type_attr) for n in labels]
        types = None
        if any(t is not None for t in raw_types):
            vocabulary = {t: i for i, t in enumerate(dict.fromkeys(raw_types))}
            types = np.array([vocabulary[t] for t in raw_types], np.int32)
        return cls.from_edges(
            len(labels), senders, receivers, resolve(sensory, "sensory"), resolve(motor, "motor"),
            neuron_types=types, labels=labels, name=name,
        )

    def to_networkx(self) -> nx.DiGraph:
        """A DiGraph with the original labels; nodes carry ``sensory``, ``motor``, ``type``."""
        graph = nx.DiGraph(name=self.name)
        sensory, motor = set(self.sensory.tolist()), set(self.motor.tolist())
        for i, label in enumerate(self.labels):
            graph.add_node(label, sensory=i in sensory, motor=i in motor, type=int(self.neuron_types[i]))
        graph.add_edges_from(
            (self.labels[s], self.labels[r]) for s, r in zip(self.senders.tolist(), self.receivers.tolist())
        )
        return graph

    # ------------------------------------------------------------------ derived views
    @property
    def num_edges(self) -> int:
        return int(self.senders.shape[0])

    @property
    def density(self) -> float:
        """Fraction of the N*N possible directed edges (self-loops included) present."""
        return self.num_edges / float(self.num_neurons**2)

    @property
    def num_types(self) -> int:
        return int(self.neuron_types.max()) + 1

    def adjacency(self, dtype=np.float32) -> np.ndarray:
        """Dense ``[N, N]`` mask with ``A[j, i] = 1`` iff edge ``j -> i``.

        Row = sender, column = receiver, so ``m = phi(h) @ (W * A)`` for ``h: [B, N]``
        (the same layout as a Flax ``Linear`` kernel ``[in, out]``).
        """
        a = np.zeros((self.num_neurons, self.num_neurons), dtype)
        a[self.senders, self.receivers] = 1
        return a

    def in_degree(self) -> np.ndarray:
        return np.bincount(self.receivers, minlength=self.num_neurons).astype(np.int32)

    def permuted(self, permutation: Sequence[int] | np.ndarray) -> "NeuronGraph":
        """The same graph with neuron ``i`` renamed ``permutation[i]``."""
        perm = np.asarray(permutation, np.int32)
        if sorted(perm.tolist()) != list(range(self.num_neurons)):
            raise GraphError(f"Graph '{self.name}': {perm.tolist()} is not a permutation of 0..{self.num_neurons - 1}.")
        labels = [None] * self.num_neurons
        types = np.zeros_like(self.neuron_types)
        for old, new in enumerate(perm.tolist()):
            labels[new] = self.labels[old]
            types[new] = self.neuron_types[old]
        return NeuronGraph.from_edges(
            self.num_neurons, perm[self.senders], perm[self.receivers], perm[self.sensory],
            perm[self.motor], neuron_types=types, labels=labels, name=self.name,
        )

    # ------------------------------------------------------------------ distances
    def hops(self, sources: Iterable[int] | np.ndarray, targets: Iterable[int] | np.ndarray) -> int | None:
        """Edges on the shortest directed path from any of ``sources`` to any of ``targets``.

        0 when the two sets share a neuron; ``None`` when no target is reachable. A signal
        entering at ``sources`` needs this many message rounds to reach a target.
        """
        is_target = np.zeros(self.num_neurons, bool)
        is_target[np.asarray(targets, np.int64)] = True
        for distance, frontier in enumerate(self._frontiers(sources)):
            if (frontier & is_target).any():
                return distance
        return None

    def _frontiers(self, sources: Iterable[int] | np.ndarray) -> Iterator[np.ndarray]:
        """Breadth-first search from ``sources``: yields ``[N]`` bool masks of the neurons first
        reached after 0, 1, 2, ... edges (one sweep over the edges per level), until none is new."""
        reached = np.zeros(self.num_neurons, bool)
        reached[np.asarray(sources, np.int64)] = True
        frontier = reached.copy()
        while frontier.any():
            yield frontier
            step = np.zeros_like(reached)
            step[self.receivers[frontier[self.senders]]] = True
            frontier = step & ~reached
            reached |= step

    @property
    def sensory_motor_hops(self) -> int:
        """Edges on the shortest sensory -> motor path (0 when a neuron is both)."""
        return int(self.hops(self.sensory, self.motor))

    # ------------------------------------------------------------------ validation
    def _check_motor_reachable(self) -> None:
        """Refuses a motor neuron that no sensory neuron reaches (it could never respond)."""
        reached = np.zeros(self.num_neurons, bool)
        for frontier in self._frontiers(self.sensory):
            reached |= frontier
        unreachable = self.motor[~reached[self.motor]]
        if unreachable.size:
            i = int(unreachable[0])
            raise GraphError(
                f"Graph '{self.name}': motor neuron {self.labels[i]!r} (index {i}) cannot be reached "
                "from any sensory neuron, so it can never respond to the input. Add a path from a "
                "sensory neuron to it, or do not mark it as motor."
            )

    # ------------------------------------------------------------------ static-arg protocol
    def fingerprint(self) -> str:
        """A content hash: equal graphs (same edges, roles, types) have equal fingerprints."""
        h = hashlib.sha1()
        h.update(np.int64(self.num_neurons).tobytes())
        for array in (self.senders, self.receivers, self.sensory, self.motor, self.neuron_types):
            h.update(np.ascontiguousarray(array).tobytes())
            h.update(b"|")
        return h.hexdigest()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NeuronGraph) and self.fingerprint() == other.fingerprint()

    def __repr__(self) -> str:
        return (
            f"NeuronGraph(name={self.name!r}, neurons={self.num_neurons}, edges={self.num_edges}, "
            f"density={self.density:.3f}, sensory={self.sensory.size}, motor={self.motor.size}, "
            f"types={self.num_types})"
        )
