"""G: the topology registry, networkx round trips, and each validation error."""

import networkx as nx
import pytest

from tnd.graph import (
    NCP_TYPE_NAMES,
    GraphError,
    NeuronGraph,
    TopologyError,
    build_topology,
    register_topology,
    topology_names,
)
from tnd.graph.topologies import _TOPOLOGIES, graph_from_digraph

EXPECTED = {"fully_connected", "erdos_renyi", "small_world", "scale_free", "modular", "ring", "lattice", "layered_ncp"}


def test_registry_has_every_builtin_topology():
    assert EXPECTED <= set(topology_names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("n", [12, 48])
def test_every_topology_builds_validates_and_round_trips(name, n):
    g = build_topology(name, n, seed=3)
    assert g.num_neurons == n and g.num_edges > 0
    assert g.sensory.size >= 1 and g.motor.size >= 1
    # revalidation from raw arrays succeeds (reachability etc.)
    again = NeuronGraph.from_edges(n, g.senders, g.receivers, g.sensory, g.motor, neuron_types=g.neuron_types)
    assert again == g
    back = NeuronGraph.from_networkx(g.to_networkx())
    assert back == g
    assert set(back.labels) == set(g.labels)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_topologies_are_seeded(name):
    a, b = build_topology(name, 40, seed=5), build_topology(name, 40, seed=5)
    assert a == b


def test_random_topologies_depend_on_seed():
    assert build_topology("erdos_renyi", 40, seed=0) != build_topology("erdos_renyi", 40, seed=1)


def test_erdos_renyi_density_option():
    g = build_topology("erdos_renyi", 400, seed=0, density=0.05)
    assert abs(g.density - 0.05) < 0.01


def test_sparse_topology_is_repaired_to_validity():
    # p so low that motor neurons are almost surely unreachable -> repaired, still valid
    g = build_topology("erdos_renyi", 64, seed=0, p=0.001)
    assert "repairs" in g.name
    NeuronGraph.from_edges(64, g.senders, g.receivers, g.sensory, g.motor)


def test_layered_ncp_types_and_wiring():
    g = build_topology("layered_ncp", 64, seed=0)
    types = g.neuron_types
    assert set(types.tolist()) == {0, 1, 2, 3} and NCP_TYPE_NAMES[3] == "motor"
    assert (types[g.sensory] == 0).all() and (types[g.motor] == 3).all()
    layer_of = types[g.senders], types[g.receivers]
    allowed = {(0, 1), (1, 2), (2, 2), (2, 3)}
    assert set(zip(*[x.tolist() for x in layer_of])) <= allowed
    assert ((layer_of[0] == 2) & (layer_of[1] == 2)).any()  # recurrent command synapses


def test_unknown_topology_lists_valid_names():
    with pytest.raises(TopologyError, match="Unknown topology 'nope'.*erdos_renyi.*small_world"):
        build_topology("nope", 10)
    with pytest.raises(TopologyError, match=r"Unknown topology 'smallworld' \(did you mean 'small_world'\?\)\. "
                                            "Valid topologies: .*Register a new one with tnd.graph.register_topology"):
        build_topology("smallworld", 10)


def test_bad_topology_option_is_named():
    with pytest.raises(TopologyError, match="no option 'q'.*Valid options: k, p"):
        build_topology("small_world", 10, q=3)
    with pytest.raises(TopologyError, match="p must lie in"):
        build_topology("erdos_renyi", 10, p=2.0)
    with pytest.raises(TopologyError, match="num_sensory"):
        build_topology("ring", 4, num_sensory=3, num_motor=3)


def test_user_registers_a_topology_without_editing_the_library():
    @register_topology("test_star")
    def star(n, *, rng, seed, num_sensory, num_motor, hub: int = 0):
        return graph_from_digraph(nx.star_graph(n - 1), "test_star", num_sensory, num_motor, rng)

    try:
        assert "test_star" in topology_names()
        g = build_topology("test_star", 9, num_sensory=1, num_motor=2)
        assert g.num_edges == 16
        with pytest.raises(TopologyError, match="Topology 'test_star' has no option 'hubb'. Valid options: hub."):
            build_topology("test_star", 9, hubb=1)
        with pytest.raises(TopologyError, match="register_topology needs a non-empty name"):
            register_topology("")
    finally:  # other tests check the registry against conf/graph/
        _TOPOLOGIES.pop("test_star", None)


# ------------------------------------------------------------------ validation errors
def _edges(n=4):
    return dict(num_neurons=n, senders=[0, 1, 2], receivers=[1, 2, 3], sensory=[0], motor=[3])


def test_error_index_out_of_range():
    with pytest.raises(GraphError, match="edge index 7 in receivers is out of range"):
        NeuronGraph.from_edges(**{**_edges(), "receivers": [1, 2, 7]})


def test_error_no_sensory():
    with pytest.raises(GraphError, match="no sensory neuron"):
        NeuronGraph.from_edges(**{**_edges(), "sensory": []})


def test_error_no_motor():
    with pytest.raises(GraphError, match="no motor neuron"):
        NeuronGraph.from_edges(**{**_edges(), "motor": []})


def test_error_unreachable_motor():
    with pytest.raises(GraphError, match="motor neuron 3 .*cannot be reached"):
        NeuronGraph.from_edges(**{**_edges(), "senders": [0, 1, 3], "receivers": [1, 2, 2]})


def test_error_duplicate_edges():
    with pytest.raises(GraphError, match="duplicate edge 0 -> 1"):
        NeuronGraph.from_edges(**{**_edges(), "senders": [0, 0, 1, 2], "receivers": [1, 1, 2, 3]})


def test_error_empty_graph():
    with pytest.raises(GraphError, match="is empty"):
        NeuronGraph.from_edges(**{**_edges(), "senders": [], "receivers": []})
    with pytest.raises(GraphError, match="is empty"):
        NeuronGraph.from_networkx(nx.DiGraph())


def test_a_built_graph_cannot_be_changed_in_place():
    graph = NeuronGraph.from_edges(3, [0, 1], [1, 2], sensory=[0], motor=[2], neuron_types=[0, 1, 1])
    for array in (graph.senders, graph.receivers, graph.sensory, graph.motor, graph.neuron_types):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1
