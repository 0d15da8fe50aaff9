"""The TND model: harness invariants, locality, relabelling symmetry, gradients, options."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnd.core import ProgramShape, TNDCore, TNDCoreError
from tnd.dynamics import DynamicsError, dynamics_names
from tnd.graph import GraphData, NeuronGraph, TopologyError, build_topology
from tnd.interaction import InteractionError, interaction_names
from tnd.models import build_model, compile_step, count_params, model_names, width_option
from tnd.models.tnd_model import TNDModel, build_core

OBS, ACTIONS, D = (4,), 3, 3


def _model(graph=None, **options):
    if graph is None:
        options.setdefault("num_neurons", 16)
    options.setdefault("state_dim", D)
    options.setdefault("encoder_features", 8)
    return build_model("tnd", obs_shape=OBS, num_actions=ACTIONS, rngs=nnx.Rngs(0), graph=graph, **options)


def test_registered_with_width_option():
    assert "tnd" in model_names() and width_option("tnd") == "num_neurons"
    model = _model(topology="small_world", topology_options={"k": 4})
    assert model.graph.name.startswith("small_world") and model.graph.num_neurons == 16
    assert count_params(model) > 0


@pytest.mark.parametrize(
    "options",
    [
        dict(interaction="scalar", dynamics="leaky", path="sparse"),
        dict(interaction="plastic", dynamics="gated", path="dense", inner_rounds=2),
        dict(interaction="vector", dynamics="cfc", sharing="per_type", path="sparse", edge_gate=True),
    ],
    ids=["scalar-leaky", "plastic-gated-2rounds", "vector-cfc-gate"],
)
def test_sequence_call_equals_step_applied_t_times(options):
    model = _model(**options)
    batch, time = 3, 6
    x = jax.random.normal(jax.random.key(1), (batch, time) + OBS)
    resets = jnp.zeros((batch, time), bool).at[0, 3].set(True).at[2, 1].set(True)
    step_fn, state = compile_step(model)
    graphdef, _ = nnx.split(model)
    sequence = jax.jit(lambda state, x, r: nnx.merge(graphdef, state)(x, r))
    for r in (jnp.zeros((batch, time), bool), resets):
        carry, logits = sequence(state, x, r)
        c = model.initial_state(batch)
        steps = []
        for t in range(time):
            c = jnp.where(r[:, t, None, None], model.initial_state(batch), c)
            c, out = step_fn(state, c, x[:, t])
            steps.append(out)
        np.testing.assert_allclose(logits, jnp.stack(steps, 1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(carry, c, rtol=1e-5, atol=1e-5)
        assert carry.shape == (batch, 16, D) and logits.shape == (batch, time, ACTIONS)
    # the default resets=None path is the all-False one
    np.testing.assert_allclose(model(x)[1], sequence(state, x, jnp.zeros((batch, time), bool))[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path", ["sparse", "dense"])
@pytest.mark.parametrize(
    "interaction,dynamics", list(zip(interaction_names(), dynamics_names() + dynamics_names()[:1])), ids=lambda v: str(v)
)
@pytest.mark.filterwarnings("ignore::tnd.core.cell.LatencyWarning")
def test_locality_one_step_reaches_only_out_neighbours(interaction, dynamics, path):
    graph = build_topology("erdos_renyi", 14, seed=2, p=0.15)
    core = build_core(graph, 5, rngs=nnx.Rngs(0), state_dim=D, interaction=interaction, dynamics=dynamics,
                      sharing="per_neuron", path=path, inner_rounds=1)  # one round: one hop
    prepared = core.prepare(2)
    h = jax.random.normal(jax.random.key(0), (graph.num_neurons, D * 2))  # rows [N, d * B]
    u = core.place(core.input_rows(jax.random.normal(jax.random.key(1), (2, 5))))  # input held fixed
    one_round = jax.jit(lambda h: core.round(prepared, h, core.interaction.phi(h), u)[0])
    n = graph.num_neurons
    # rows 0..n-1: h_j moved; row n: unperturbed (a real leak moves a neighbour by ~0.1)
    shifts = 0.5 * jnp.concatenate([jnp.eye(n), jnp.zeros((1, n))])[:, :, None]
    out = np.asarray(jax.vmap(one_round)(h[None] + shifts))
    delta = np.abs(out[:n] - out[n:]).max(axis=2)  # [j, i]
    for j in range(n):
        moved = set(np.nonzero(delta[j] > 1e-5)[0].tolist())  # float noise of batched matmuls is ~1e-7
        allowed = {j} | set(graph.receivers[graph.senders == j].tolist())
        assert moved <= allowed, f"perturbing neuron {j} changed {sorted(moved - allowed)} (not out-neighbours)"
        assert j in moved


def _relabel_params(a: TNDModel, b: TNDModel, perm: np.ndarray) -> None:
    """Copies a's parameters into b (built on a.graph.permuted(perm)) so both compute the same."""
    ga, gb = a.graph, b.graph
    inv = np.argsort(perm)
    index_a = {(s, r): e for e, (s, r) in enumerate(zip(ga.senders.tolist(), ga.receivers.tolist()))}
    edge_map = np.array([index_a[(inv[s], inv[r])] for s, r in zip(gb.senders.tolist(), gb.receivers.tolist())])
    sensory_pos = {n: i for i, n in enumerate(ga.sensory.tolist())}
    sensory_map = np.array([sensory_pos[inv[n]] for n in gb.sensory.tolist()])
    motor_pos = {n: i for i, n in enumerate(ga.motor.tolist())}
    motor_map = np.array([motor_pos[inv[n]] for n in gb.motor.tolist()])
    head_rows = (motor_map[:, None] * D + np.arange(D)).reshape(-1)
    new = {}
    for path, var in nnx.to_flat_state(nnx.state(a, nnx.Param)):
        value, name = var[...], path[-1]
        if name in ("weights", "logits"):
            value = value[edge_map]
        elif name in ("receiver_embedding", "sender_embedding", "tau_log_excess") or path[:2] == ("core", "dynamics"):
            value = value[inv]  # per-neuron: new neuron perm[i] takes old neuron i's parameters
        elif name == "input_kernel":
            value = value[:, sensory_map]
        elif name == "input_bias":
            value = value[sensory_map]
        elif path == ("head", "kernel"):
            value = value[head_rows]
        new[path] = value
    state = nnx.state(b, nnx.Param)
    for path, var in nnx.to_flat_state(state):
        var[...] = new[path]
    nnx.update(b, state)


@pytest.mark.parametrize("interaction", interaction_names())
def test_relabelling_neurons_permutes_states_and_keeps_readout(interaction):
    graph = build_topology("erdos_renyi", 12, seed=4, p=0.3)
    perm = np.random.default_rng(0).permutation(graph.num_neurons)
    options = dict(state_dim=D, encoder_features=8, interaction=interaction, dynamics="gated",
                   sharing="per_neuron", edge_gate=True)
    a = _model(graph=graph, **options)
    b = _model(graph=graph.permuted(perm), **options)
    _relabel_params(a, b, perm)
    x = jax.random.normal(jax.random.key(1), (2, 5) + OBS)
    carry_a, logits_a = nnx.jit(lambda m, x: m(x))(a, x)
    carry_b, logits_b = nnx.jit(lambda m, x: m(x))(b, x)
    np.testing.assert_allclose(carry_b[:, perm], carry_a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits_b, logits_a, rtol=1e-5, atol=1e-5)
    assert not np.allclose(carry_b, carry_a)  # the relabelling is not trivial


@pytest.mark.parametrize("interaction", interaction_names())
@pytest.mark.parametrize("path", ["sparse", "dense"])
def test_gradients_finite_and_every_edge_weight_receives_one(interaction, path):
    graph = build_topology("erdos_renyi", 16, seed=1, p=0.3)
    model = _model(graph=graph, interaction=interaction, path=path, edge_gate=True)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x = jax.random.normal(jax.random.key(1), (2, 5) + OBS)
    carry0 = jax.random.normal(jax.random.key(2), (2, 16, D))

    def loss(p):
        m = nnx.merge(graphdef, p, rest)
        _, logits = m(x, carry=carry0)
        return jnp.mean(logits**2) + m.regularization()

    grads = jax.jit(jax.grad(loss))(params)
    for gpath, g in nnx.to_flat_state(grads):
        assert np.isfinite(np.asarray(g[...])).all(), gpath
    inter = grads["core"]["interaction"]
    edge_grads = [inter["gate"]["logits"][...]]
    if "weights" in inter:
        edge_grads.append(inter["weights"][...].reshape(graph.num_edges, -1))
    for g in edge_grads:
        assert (np.abs(np.asarray(g)).reshape(graph.num_edges, -1).max(-1) > 0).all()


def test_edge_gate_regularization_and_pruning():
    model = _model(edge_gate=True, topology="erdos_renyi", topology_options={"p": 0.3})
    assert float(model.regularization()) > 0
    assert model.kept_edges().all()
    no_gate = _model()
    assert float(no_gate.regularization()) == 0.0
    logits = model.core.interaction.gate.logits
    logits[...] = logits[...].at[:3].set(-5.0)
    assert model.kept_edges().sum() == model.graph.num_edges - 3


def test_per_neuron_and_per_type_sharing_shapes():
    graph = build_topology("layered_ncp", 24, seed=0)
    for sharing, groups in (("shared", 1), ("per_neuron", 24), ("per_type", 4)):
        core = build_core(graph, 5, rngs=nnx.Rngs(0), state_dim=D, dynamics="gated", sharing=sharing)
        assert core.dynamics.w_hidden.shape[0] == groups
    leaky = build_core(graph, 5, rngs=nnx.Rngs(0), state_dim=D, dynamics="leaky")
    tau = leaky.dynamics.time_constants()
    assert tau.shape == (24, D) and float(tau.min()) >= 1.0


def test_unknown_option_values_raise_one_clear_error():
    with pytest.raises(InteractionError, match="Valid values: scalar, vector, lowrank, plastic"):
        _model(interaction="attention")
    with pytest.raises(DynamicsError, match="Valid values: leaky, gated, cfc"):
        _model(dynamics="lstm")
    with pytest.raises(DynamicsError, match="Valid values: shared, per_neuron, per_type"):
        _model(sharing="per_layer")
    with pytest.raises(InteractionError, match="Valid values: auto, sparse, dense"):
        _model(path="fast")
    with pytest.raises(TopologyError, match="Unknown topology 'torus'"):
        _model(topology="torus")
    with pytest.raises(ValueError, match="inner_rounds"):
        _model(inner_rounds=0)


def test_the_core_receives_its_parts_and_builds_the_same_parameters():
    """I and F are objects handed to TNDCore; built by hand they give build_core's parameters."""
    from tnd.dynamics import make_dynamics
    from tnd.graph import GraphArrays
    from tnd.interaction import make_interaction

    graph = build_topology("layered_ncp", 20, seed=1)
    rngs = nnx.Rngs(3)
    arrays = GraphArrays(graph)
    interaction = make_interaction("lowrank", arrays, D, rngs=rngs, path="dense", rank=2)
    dynamics = make_dynamics("cfc", arrays, D, rngs=rngs, sharing="per_type")
    core = TNDCore(graph, 5, interaction=interaction, dynamics=dynamics, rngs=rngs)
    assert core.interaction is interaction and core.dynamics is dynamics and core.arrays is arrays
    named = build_core(graph, 5, rngs=nnx.Rngs(3), state_dim=D, interaction="lowrank", path="dense",
                       interaction_options={"rank": 2}, dynamics="cfc", sharing="per_type")
    for (path, a), (_, b) in zip(nnx.to_flat_state(nnx.state(core)), nnx.to_flat_state(nnx.state(named)), strict=True):
        np.testing.assert_array_equal(a[...], b[...], err_msg=str(path))
    other = make_dynamics("leaky", GraphArrays(graph), D, rngs=rngs)
    with pytest.raises(TNDCoreError, match="one GraphArrays"):
        TNDCore(graph, 5, interaction=interaction, dynamics=other, rngs=rngs)


def test_part_options_are_checked_by_name_with_the_valid_ones():
    with pytest.raises(InteractionError, match=r"Interaction 'scalar' has no option 'rank'\. Valid options: edge_gate, "):
        _model(interaction_options={"rank": 2})
    with pytest.raises(DynamicsError, match=r"Dynamics 'leaky' has no option 'units'\. Valid options: learn_tau, tau_max"):
        _model(dynamics_options={"units": 2})
    with pytest.raises(InteractionError, match=r"Unknown interaction 'lowrnak' \(did you mean 'lowrank'\?\)"):
        _model(interaction="lowrnak")


def test_plugins_add_interactions_and_dynamics_by_decorator():
    """A plugin registers its own I and F by name; the TND model builds them from options."""
    from tnd.dynamics import LeakyDynamics, register_dynamics
    from tnd.dynamics.local import _DYNAMICS
    from tnd.interaction import ScalarInteraction, register_interaction
    from tnd.interaction.operators import _INTERACTIONS

    @register_interaction("signed_scalar")
    class SignedScalar(ScalarInteraction):
        def _edge_weights(self):
            return jnp.abs(super()._edge_weights()) * jnp.sign(self.arrays.array("senders") % 2 - 0.5)[:, None]

    @register_dynamics("slow_leaky")
    class SlowLeaky(LeakyDynamics):
        pass

    try:
        assert "signed_scalar" in interaction_names() and "slow_leaky" in dynamics_names()
        model = build_model("tnd", obs_shape=(5,), num_actions=3, rngs=nnx.Rngs(0), num_neurons=12,
                            interaction="signed_scalar", dynamics="slow_leaky")
        assert isinstance(model.core.interaction, SignedScalar) and isinstance(model.core.dynamics, SlowLeaky)
        _, logits = model(jnp.ones((2, 3, 5)), jnp.zeros((2, 3), bool))
        assert logits.shape == (2, 3, 3) and bool(jnp.isfinite(logits).all())
        with pytest.raises(InteractionError, match="needs an Interaction subclass"):
            register_interaction("bad")(42)
        with pytest.raises(DynamicsError, match="needs a LocalDynamics subclass"):
            register_dynamics("bad")(object)
    finally:
        _INTERACTIONS.pop("signed_scalar", None)
        _DYNAMICS.pop("slow_leaky", None)


@pytest.mark.parametrize("interaction", ["scalar", "vector", "lowrank"])
def test_fused_sparse_round_equals_the_dense_path_in_values_and_gradients(interaction):
    """The hand-written leaky round (sparse path) against JAX's derivative of the dense path."""
    graph = build_topology("small_world", 20, seed=3, k=4, p=0.2)
    sparse = _model(graph=graph, interaction=interaction, path="sparse", edge_gate=True, state_dim=4)
    dense = _model(graph=graph, interaction=interaction, path="dense", edge_gate=True, state_dim=4)
    assert sparse.core.fused and not dense.core.fused
    nnx.update(dense, nnx.state(sparse, nnx.Param))
    x = jax.random.normal(jax.random.key(1), (3, 7) + OBS)
    resets = jnp.zeros((3, 7), bool).at[1, 4].set(True)
    carry0 = jax.random.normal(jax.random.key(2), (3, 20, 4))

    def loss_and_grads(model):
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def loss(p, c):
            carry, logits = nnx.merge(graphdef, p, rest)(x, resets, carry=c)
            return jnp.sum(jnp.sin(logits)) + jnp.sum(carry**2)

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, carry0)

    (ls, (gs, cs)), (ld, (gd, cd)) = loss_and_grads(sparse), loss_and_grads(dense)
    np.testing.assert_allclose(ls, ld, rtol=1e-5)
    np.testing.assert_allclose(cs, cd, rtol=1e-4, atol=1e-5)
    for (path, a), (_, b) in zip(nnx.to_flat_state(gs), nnx.to_flat_state(gd)):
        np.testing.assert_allclose(a[...], b[...], rtol=1e-4, atol=1e-5, err_msg=str(path))


def _two_graphs_of_one_size():
    """Two graphs with equal neuron, edge, sensory and motor counts but different fan-in and
    input -> readout distance (1 and 2 edges): sensory 0, motor 5."""
    a = NeuronGraph.from_edges(6, [0, 0, 1, 2, 3, 4, 5], [1, 5, 2, 3, 4, 5, 0], [0], [5])
    b = NeuronGraph.from_edges(6, [0, 1, 2, 3, 3, 4, 2], [1, 5, 3, 4, 5, 5, 0], [0], [5])
    return a, b


@pytest.mark.slow
def test_graphs_of_one_size_share_one_program_and_compute_what_each_computes_alone():
    """Graphs as data: padded to one program shape (fan-in, rounds), each graph's model gives
    the outputs and gradients it gives unpadded, and a vmapped stack of both equals them."""
    a, b = _two_graphs_of_one_size()
    alone = [_model(graph=g, interaction="vector", state_dim=2) for g in (a, b)]
    assert [m.core.rounds for m in alone] == [2, 3]  # D + 1: no lag for either
    shape = ProgramShape.common([m.program_shape() for m in alone])
    padded = [_model(graph=g, interaction="vector", state_dim=2, program_shape=shape) for g in (a, b)]
    for m, p in zip(alone, padded):
        nnx.update(p, nnx.state(m, nnx.Param))
        assert p.core.inner_rounds == 3 and p.core.rounds == m.core.rounds
    graphdefs = [nnx.split(p, nnx.Param, ...)[0] for p in padded]
    assert graphdefs[0] == graphdefs[1]  # one program for both graphs
    x = jax.random.normal(jax.random.key(1), (2, 5) + OBS)

    def grads(graphdef, params, rest):
        def loss(p):
            return jnp.sum(jnp.sin(nnx.merge(graphdef, p, rest)(x)[1]))

        return jax.value_and_grad(loss)(params)

    separate = [jax.jit(grads, static_argnums=0)(*nnx.split(m, nnx.Param, ...)) for m in alone]
    splits = [nnx.split(p, nnx.Param, ...) for p in padded]
    stack = lambda trees: jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)  # noqa: E731
    stacked = jax.jit(jax.vmap(functools.partial(grads, graphdefs[0])))(stack([s[1] for s in splits]),
                                                                         stack([s[2] for s in splits]))
    for i, (loss, g) in enumerate(separate):
        np.testing.assert_allclose(stacked[0][i], loss, rtol=1e-5)
        for (path, got), (_, want) in zip(nnx.to_flat_state(jax.tree.map(lambda v: v[i], stacked[1])),
                                          nnx.to_flat_state(g)):
            np.testing.assert_allclose(got[...], want[...], rtol=1e-4, atol=1e-6, err_msg=str(path))
    # the first action depends on the first observation in both seeds of the stack (no lag)
    for p in padded:
        graphdef, params, rest = nnx.split(p, nnx.Param, ...)
        jac = jax.jacobian(lambda obs: nnx.merge(graphdef, params, rest)(obs)[1][:, 0])(x)
        assert float(jnp.abs(jac[:, :, :, 0]).max()) > 1e-6


def test_the_graph_is_data_not_program_structure():
    """Seeds of small_world at one size, padded to one program shape: one graphdef, different
    graph arrays; `graph` rebuilds each."""
    options = dict(num_neurons=30, topology="small_world", topology_options={"k": 4})
    own = [_model(**options, graph_seed=s).program_shape() for s in (0, 1)]
    models = [_model(**options, graph_seed=s, program_shape=ProgramShape.common(own)) for s in (0, 1)]
    assert nnx.graphdef(models[0]) == nnx.graphdef(models[1])
    assert models[0].graph != models[1].graph
    assert models[0].graph == build_topology("small_world", 30, seed=0, k=4)
    graph_data = nnx.to_flat_state(nnx.state(models[0], GraphData))
    assert {path[-1] for path, _ in graph_data} >= {"senders", "receivers", "in_index", "out_index"}
    assert count_params(models[0]) == count_params(models[1])  # graph data is no parameter


def test_a_step_of_the_fused_model_takes_forward_mode_derivatives():
    """`tnd.analysis` pushes tangents through `model.step`; the fused round's forward allows it."""
    model = _model(num_neurons=20, topology="small_world", topology_options={"k": 4}, interaction="vector")
    assert model.core.fused
    carry = jax.random.normal(jax.random.key(0), (2, 20, D))
    x_t = jax.random.normal(jax.random.key(1), (2,) + OBS)
    step = lambda c: model.step(c, x_t)[0]  # noqa: E731
    tangent = jax.random.normal(jax.random.key(2), carry.shape)
    _, forward = jax.jvp(step, (carry,), (tangent,))
    _, pull_back = jax.vjp(step, carry)
    np.testing.assert_allclose(jnp.vdot(forward, tangent), jnp.vdot(pull_back(tangent)[0], tangent), rtol=1e-4)
