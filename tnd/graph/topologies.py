"""The topology registry: named, seeded neuron-graph generators.

    build_topology("small_world", 64, seed=0, k=6, p=0.1) -> NeuronGraph
    topology_names() -> ["erdos_renyi", "fully_connected", ...]

Every builder has the signature
``builder(num_neurons, *, rng: np.random.Generator, seed: int, num_sensory, num_motor,
**options) -> NeuronGraph`` and is registered with ``@register_topology("name")`` (or
``register_topology("name", builder)``), so a user adds a topology without editing the
library. Builders use networkx generators where one exists.

Sensory and motor neurons (unless a builder assigns roles itself, as ``layered_ncp`` does):
sensory = the first ``num_sensory`` neurons, motor = the last ``num_motor`` neurons
(defaults ``max(1, N // 8)`` each). Validity is *guaranteed*: if the random draw leaves a
motor neuron unreachable from every sensory neuron, `_ensure_reachable` adds the fewest
edges needed -- for each unreachable motor neuron one chain ``reached -> ... -> motor``
of a single new edge from a randomly chosen reachable neuron -- and the repair is
recorded in the graph's name (``"+N repairs"``), so no random topology ever fails.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np

from tnd.graph.neuron_graph import GraphError, NeuronGraph
from tnd.registry import Registry, check_options, keyword_options

TopologyBuilder = Callable[..., NeuronGraph]

SENSORY, INTER, COMMAND, MOTOR = 0, 1, 2, 3
NCP_TYPE_NAMES = ("sensory", "inter", "command", "motor")
BUILDER_ARGUMENTS = ("rng", "seed", "num_sensory", "num_motor")  # what build_topology passes every builder


class TopologyError(GraphError):
    """An unknown topology name or invalid topology options."""


_TOPOLOGIES: Registry[TopologyBuilder] = Registry(
    "topology", TopologyError, listed="Valid topologies", hint="Register a new one with tnd.graph.register_topology.",
    register_name="register_topology", accepts=(callable, "a builder function"),
)


def register_topology(name: str, builder: TopologyBuilder | None = None):
    """Registers a topology builder under ``name`` (decorator or direct call).

    ``builder(num_neurons, *, rng, seed, num_sensory, num_motor, **options) -> NeuronGraph``.
    A later registration under the same name replaces the earlier one.
    """
    return _TOPOLOGIES.register(name, builder)


def topology_names() -> list[str]:
    """The registered topologies, sorted."""
    return _TOPOLOGIES.names()


def build_topology(
    name: str,
    num_neurons: int,
    *,
    seed: int = 0,
    num_sensory: int | None = None,
    num_motor: int | None = None,
    **options,
) -> NeuronGraph:
    """Builds the registered topology ``name`` with N neurons (deterministic given ``seed``)."""
    builder = _TOPOLOGIES.get(name)
    if not isinstance(num_neurons, (int, np.integer)) or num_neurons < 2:
        raise TopologyError(f"Topology '{name}' needs num_neurons >= 2, got {num_neurons!r}.")
    num_neurons = int(num_neurons)
    num_sensory = max(1, num_neurons // 8) if num_sensory is None else int(num_sensory)
    num_motor = max(1, num_neurons // 8) if num_motor is None else int(num_motor)
    if num_sensory < 1 or num_motor < 1 or num_sensory + num_motor > num_neurons:
        raise TopologyError(
            f"Topology '{name}': need 1 <= num_sensory, 1 <= num_motor and num_sensory + num_motor "
            f"<= num_neurons; got {num_sensory} + {num_motor} for {num_neurons} neurons."
        )
    check_options(f"Topology '{name}'", options, keyword_options(builder, fixed=BUILDER_ARGUMENTS), TopologyError)
    try:
        graph = builder(
            num_neurons, rng=np.random.default_rng(seed), seed=int(seed),
            num_sensory=num_sensory, num_motor=num_motor, **options,
        )
    except (nx.NetworkXError, ValueError) as err:
        if isinstance(err, GraphError):
            raise
        raise TopologyError(f"Topology '{name}' with options {options}: {err}") from err
    if not isinstance(graph, NeuronGraph):
        raise TopologyError(
            f"Topology '{name}''s builder returned {type(graph).__name__}, not a NeuronGraph "
            "(end it with e.g. `return NeuronGraph.from_networkx(g, sensory=..., motor=...)`)."
        )
    return graph


# ---------------------------------------------------------------------- helpers
def _check_prob(name: str, option: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise TopologyError(f"Topology '{name}': option {option} must lie in [0, 1], got {value}.")
    return value


def _check_density(name: str, option: str, value: float) -> float:
    """A connection density or probability that must leave edges to build on: (0, 1]."""
    value = _check_prob(name, option, value)
    if value == 0.0:
        raise TopologyError(f"Topology '{name}': option {option} must be > 0 (0 leaves no edges), got {value}.")
    return value


def _ensure_reachable(
    senders: np.ndarray, receivers: np.ndarray, n: int, sensory: np.ndarray, motor: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Adds one edge (reached neuron -> motor) per motor neuron no sensory neuron reaches.

    Adding an edge from any already-reachable neuron makes the motor neuron reachable, so
    one edge per unreachable motor neuron is the minimal repair. Returns the new edge
    arrays and the number of edges added.
    """
    reached = np.zeros(n, bool)
    reached[sensory] = True
    frontier = reached.copy()
    while frontier.any():
        step = np.zeros(n, bool)
        step[receivers[frontier[senders]]] = True
        frontier = step & ~reached
        reached |= step
    missing = motor[~reached[motor]]
    if missing.size == 0:
        return senders, receivers, 0
    sources = np.nonzero(reached)[0]
    new_s = rng.choice(sources, size=missing.size)
    return (
        np.concatenate([senders, new_s.astype(np.int32)]),
        np.concatenate([receivers, missing.astype(np.int32)]),
        int(missing.size),
    )


def graph_from_digraph(
    graph: nx.DiGraph | nx.Graph, name: str, num_sensory: int, num_motor: int,
    rng: np.random.Generator, neuron_types: np.ndarray | None = None,
    sensory: np.ndarray | None = None, motor: np.ndarray | None = None,
) -> NeuronGraph:
    """Turns a networkx graph on nodes ``0..N-1`` into a valid `NeuronGraph`.

    Undirected edges become two directed edges; sensory = first ``num_sensory``, motor =
    last ``num_motor`` unless given; unreachable motor neurons are repaired (see module doc).
    """
    n = graph.number_of_nodes()
    edges = np.array(list(graph.edges()), np.int64).reshape(-1, 2)
    senders, receivers = edges[:, 0], edges[:, 1]
    if not graph.is_directed():
        keep = senders != receivers
        senders, receivers = (
            np.concatenate([senders, receivers[keep]]), np.concatenate([receivers, senders[keep]])
        )
    senders, receivers = senders.astype(np.int32), receivers.astype(np.int32)
    sensory = np.arange(num_sensory, dtype=np.int32) if sensory is None else np.asarray(sensory, np.int32)
    motor = np.arange(n - num_motor, n, dtype=np.int32) if motor is None else np.asarray(motor, np.int32)
    senders, receivers, repairs = _ensure_reachable(senders, receivers, n, sensory, motor, rng)
    label = name if not repairs else f"{name}+{repairs} repairs"
    return NeuronGraph.from_edges(n, senders, receivers, sensory, motor, neuron_types=neuron_types, name=label)


# ---------------------------------------------------------------------- topologies
@register_topology("fully_connected")
def fully_connected(n, *, rng, seed, num_sensory, num_motor, self_loops: bool = False) -> NeuronGraph:
    """Every neuron talks to every other neuron (and to itself with ``self_loops``)."""
    graph = nx.complete_graph(n, create_using=nx.DiGraph)
    if self_loops:
        graph.add_edges_from((i, i) for i in range(n))
    return graph_from_digraph(graph, "fully_connected", num_sensory, num_motor, rng)


@register_topology("erdos_renyi")
def erdos_renyi(n, *, rng, seed, num_sensory, num_motor, p: float | None = None, density: float | None = None) -> NeuronGraph:
    """Directed G(n, p): each ordered pair i != j is an edge with probability ``p``.

    ``density`` (fraction of the N*N possible edges) is an alias: ``p = density * N / (N - 1)``.
    Default ``p = 0.1``. Uses ``nx.fast_gnp_random_graph`` (O(E)) for small p.
    """
    if p is not None and density is not None:
        raise TopologyError("Topology 'erdos_renyi': give either p or density, not both.")
    if density is not None:
        p = min(1.0, _check_density("erdos_renyi", "density", density) * n / (n - 1))
    p = _check_density("erdos_renyi", "p", 0.1 if p is None else p)
    make = nx.fast_gnp_random_graph if p < 0.2 else nx.gnp_random_graph
    graph = make(n, p, seed=seed, directed=True)
    return graph_from_digraph(graph, "erdos_renyi", num_sensory, num_motor, rng)


@register_topology("small_world")
def small_world(n, *, rng, seed, num_sensory, num_motor, k: int = 4, p: float = 0.1) -> NeuronGraph:
    """Watts-Strogatz (connected variant): ring of ``k`` nearest neighbours, rewired with prob. ``p``.

    Undirected, so every edge carries information both ways.
    """
    k = int(k)
    if not 2 <= k < n:
        raise TopologyError(f"Topology 'small_world': k must satisfy 2 <= k < num_neurons={n}, got {k}.")
    graph = nx.connected_watts_strogatz_graph(n, k, _check_prob("small_world", "p", p), seed=seed)
    return graph_from_digraph(graph, "small_world", num_sensory, num_motor, rng)


@register_topology("scale_free")
def scale_free(n, *, rng, seed, num_sensory, num_motor, m: int = 2) -> NeuronGraph:
    """Barabasi-Albert preferential attachment with ``m`` edges per new node, both directions."""
    m = int(m)
    if not 1 <= m < n:
        raise TopologyError(f"Topology 'scale_free': m must satisfy 1 <= m < num_neurons={n}, got {m}.")
    graph = nx.barabasi_albert_graph(n, m, seed=seed)
    return graph_from_digraph(graph, "scale_free", num_sensory, num_motor, rng)


@register_topology("modular")
def modular(n, *, rng, seed, num_sensory, num_motor, blocks: int = 4, p_in: float = 0.3, p_out: float = 0.02) -> NeuronGraph:
    """Directed stochastic block model: ``blocks`` equal-sized modules, densities ``p_in`` / ``p_out``.

    Neuron types = block index (so ``sharing="per_type"`` gives per-module dynamics).
    """
    blocks = int(blocks)
    if not 1 <= blocks <= n:
        raise TopologyError(f"Topology 'modular': blocks must lie in 1..{n}, got {blocks}.")
    p_in, p_out = _check_prob("modular", "p_in", p_in), _check_prob("modular", "p_out", p_out)
    sizes = [n // blocks + (1 if b < n % blocks else 0) for b in range(blocks)]
    probs = [[p_in if a == b else p_out for b in range(blocks)] for a in range(blocks)]
    graph = nx.stochastic_block_model(sizes, probs, seed=seed, directed=True, sparse=True)
    types = np.repeat(np.arange(blocks, dtype=np.int32), sizes)
    return graph_from_digraph(nx.DiGraph(graph), "modular", num_sensory, num_motor, rng, neuron_types=types)


@register_topology("ring")
def ring(n, *, rng, seed, num_sensory, num_motor, k: int = 1, bidirectional: bool = True) -> NeuronGraph:
    """Ring lattice: neuron i sends to i+1..i+k (mod N), and back too when ``bidirectional``."""
    k = int(k)
    if not 1 <= k < n:
        raise TopologyError(f"Topology 'ring': k must satisfy 1 <= k < num_neurons={n}, got {k}.")
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    for offset in range(1, k + 1):
        graph.add_edges_from((i, (i + offset) % n) for i in range(n))
        if bidirectional:
            graph.add_edges_from(((i + offset) % n, i) for i in range(n))
    graph.remove_edges_from(nx.selfloop_edges(graph))
    return graph_from_digraph(graph, "ring", num_sensory, num_motor, rng)


@register_topology("lattice")
def lattice(n, *, rng, seed, num_sensory, num_motor, periodic: bool = False) -> NeuronGraph:
    """2-D grid (as square as N allows, N = rows * cols), edges both ways between grid neighbours."""
    rows = int(np.floor(np.sqrt(n)))
    while n % rows:
        rows -= 1
    graph = nx.grid_2d_graph(rows, n // rows, periodic=periodic)
    graph = nx.convert_node_labels_to_integers(graph, ordering="sorted")
    return graph_from_digraph(graph, "lattice", num_sensory, num_motor, rng)


@register_topology("layered_ncp")
def layered_ncp(
    n, *, rng, seed, num_sensory, num_motor, num_inter: int | None = None, density: float = 0.5,
    sensory_fanout: int | None = None, inter_fanout: int | None = None,
    recurrent_command_synapses: int | None = None, motor_fanin: int | None = None,
) -> NeuronGraph:
    """Neural-circuit-policy wiring: sensory -> inter -> command (recurrent) -> motor.

    In the spirit of ncps' ``NCP``/``AutoNCP`` wiring, but the sensory neurons are neurons of
    the graph (they receive the projected input). Layout: neurons ``[0, S)`` sensory, then
    inter, then command, then the last ``M`` motor; ``neuron_types`` 0..3 = sensory, inter,
    command, motor (`NCP_TYPE_NAMES`). The ``N - S - M`` hidden neurons split 60% inter /
    40% command (AutoNCP's split; at least one of each). Fan-outs default as in AutoNCP
    from ``density``: each sensory neuron sends to ``sensory_fanout`` random inter neurons,
    each inter neuron to ``inter_fanout`` command neurons, ``recurrent_command_synapses``
    random command -> command edges, each motor neuron receives ``motor_fanin`` command
    edges. Like ncps, a neuron of a layer left without input gets edges from random
    neurons of the previous layer, so every motor neuron is reachable by construction.
    """
    hidden = n - num_sensory - num_motor
    if hidden < 2:
        raise TopologyError(
            f"Topology 'layered_ncp' needs at least 2 inter/command neurons: num_neurons={n} with "
            f"{num_sensory} sensory and {num_motor} motor leaves {hidden}."
        )
    n_inter = int(round(0.6 * hidden)) if num_inter is None else int(num_inter)
    n_inter = min(max(1, n_inter), hidden - 1)
    n_command = hidden - n_inter
    density = _check_density("layered_ncp", "density", density)
    sensory_fanout = max(1, int(n_inter * density)) if sensory_fanout is None else int(sensory_fanout)
    inter_fanout = max(1, int(n_command * density)) if inter_fanout is None else int(inter_fanout)
    recurrent = max(1, int(n_command * density * 2)) if recurrent_command_synapses is None else int(recurrent_command_synapses)
    motor_fanin = max(1, int(n_command * density)) if motor_fanin is None else int(motor_fanin)
    for option, value, limit in (
        ("sensory_fanout", sensory_fanout, n_inter), ("inter_fanout", inter_fanout, n_command),
        ("motor_fanin", motor_fanin, n_command),
    ):
        if not 1 <= value <= limit:
            raise TopologyError(f"Topology 'layered_ncp': {option} must lie in 1..{limit}, got {value}.")
    sensory = np.arange(num_sensory)
    inter = num_sensory + np.arange(n_inter)
    command = num_sensory + n_inter + np.arange(n_command)
    motor = n - num_motor + np.arange(num_motor)
    edges: set[tuple[int, int]] = set()

    def fan_out(sources, targets, fanout):
        for s in sources:
            for t in rng.choice(targets, size=fanout, replace=False):
                edges.add((int(s), int(t)))
        fed = {t for _, t in edges}
        for t in targets:  # every target of the layer gets some input, as in ncps
            if int(t) not in fed:
                for s in rng.choice(sources, size=max(1, min(len(sources), fanout)), replace=False):
                    edges.add((int(s), int(t)))

    fan_out(sensory, inter, sensory_fanout)
    fan_out(inter, command, inter_fanout)
    for _ in range(recurrent):
        edges.add((int(rng.choice(command)), int(rng.choice(command))))
    for t in motor:
        for s in rng.choice(command, size=motor_fanin, replace=False):
            edges.add((int(s), int(t)))
    types = np.zeros(n, np.int32)
    types[inter], types[command], types[motor] = INTER, COMMAND, MOTOR
    pairs = np.array(sorted(edges), np.int32)
    return NeuronGraph.from_edges(
        n, pairs[:, 0], pairs[:, 1], sensory, motor, neuron_types=types, name="layered_ncp"
    )
