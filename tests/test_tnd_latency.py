"""TND's defaults: no accidental input -> action lag, time constants that learn, placement options."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnd.core.cell import LatencyWarning, TNDCoreError, lag_steps
from tnd.dynamics.local import TAU_FLOOR, DynamicsError, LeakyDynamics
from tnd.graph import NeuronGraph, build_topology
from tnd.models import build_model, count_params

OBS, ACTIONS = (4,), 3


def _model(**options):
    options.setdefault("num_neurons", 24)
    return build_model("tnd", obs_shape=OBS, num_actions=ACTIONS, rngs=nnx.Rngs(0), state_dim=2,
                       encoder_features=8, **options)


def _chain(n: int) -> NeuronGraph:
    """0 -> 1 -> ... -> n-1, sensory 0, motor n-1: input -> readout distance n - 1."""
    return NeuronGraph.from_edges(n, np.arange(n - 1), np.arange(1, n), [0], [n - 1])


def test_hops_is_the_shortest_directed_path():
    chain = _chain(5)
    assert chain.sensory_motor_hops == 4
    assert chain.hops([2], [4]) == 2 and chain.hops([3], [3]) == 0
    assert chain.hops([4], [0]) is None  # edges are directed
    ncp = build_topology("layered_ncp", 40, seed=0)
    assert ncp.sensory_motor_hops == 3
    assert build_topology("fully_connected", 16, seed=0).sensory_motor_hops == 1


@pytest.mark.parametrize("rounds, distance, lag", [(1, 3, 3), (2, 3, 1), (3, 3, 1), (4, 3, 0), (1, 0, 0), (1, 1, 1), (2, 1, 0)])
def test_lag_formula(rounds, distance, lag):
    assert lag_steps(rounds, distance) == lag


def _first_step_sensitivity(model, steps: int) -> np.ndarray:
    """|d logits_t / d x_0| summed, for t < steps: zero where the action cannot see x_0 yet."""
    graphdef, state = nnx.split(model)

    def logits(x0):
        x = jnp.zeros((1, steps) + OBS).at[0, 0].set(x0)
        return nnx.merge(graphdef, state)(x)[1][0]  # [T, A]

    jac = jax.jacobian(logits)(jnp.ones(OBS) * 0.5)  # [T, A, D]
    return np.abs(np.asarray(jac)).sum(axis=(1, 2))


@pytest.mark.parametrize("graph", [pytest.param(_chain(4), marks=pytest.mark.slow), build_topology("layered_ncp", 24, seed=1)],
                         ids=["chain4", "layered_ncp"])
def test_auto_rounds_let_the_action_see_the_current_observation(graph):
    auto = _model(graph=graph, num_neurons=None)
    distance = graph.sensory_motor_hops
    assert auto.core.inner_rounds == distance + 1
    assert _first_step_sensitivity(auto, 3)[0] > 0  # the action at t = 0 depends on x_0
    with pytest.warns(LatencyWarning, match=f"{distance} step"):
        lagged = _model(graph=graph, num_neurons=None, inner_rounds=1)
    sens = _first_step_sensitivity(lagged, distance + 2)
    np.testing.assert_array_equal(sens[:distance], 0.0)  # x_0 reaches the action only at t = D
    assert sens[distance] > 0


def test_inner_rounds_is_validated():
    for bad in (0, -1, "fast", True, 1.5):
        with pytest.raises(TNDCoreError, match="inner_rounds"):
            _model(inner_rounds=bad)


def test_input_and_readout_placement():
    default = _model()
    everywhere = _model(input_neurons="all", readout="all")
    n, d = 24, 2
    assert everywhere.core.input_readout_hops == 0 and everywhere.core.inner_rounds == 1
    assert everywhere.core.out_features == n * d
    assert default.core.out_features == default.graph.motor.size * d
    assert everywhere.core.input_kernel.shape == (8, n, d)
    assert _first_step_sensitivity(everywhere, 2)[0] > 0
    _, logits = everywhere(jnp.ones((2, 5) + OBS))
    assert logits.shape == (2, 5, ACTIONS)
    with pytest.raises(TNDCoreError, match="readout"):
        _model(readout="sensory")
    with pytest.raises(TNDCoreError, match="input_neurons"):
        _model(input_neurons="motor")


def test_time_constants_get_a_gradient_at_every_scale():
    """d tau / d raw = tau - TAU_FLOOR: a uniform tau = 1 is not frozen (the softplus floor gave ~1e-3)."""
    graph = _chain(3)
    for tau in (1.0, 8.0):
        leaky = LeakyDynamics(graph, 2, rngs=nnx.Rngs(0), tau_min=tau, tau_max=tau)
        np.testing.assert_allclose(leaky.time_constants(), tau, rtol=1e-6)
        raw = leaky.tau_log_excess[...]
        grad = jax.grad(lambda r: (TAU_FLOOR + jnp.exp(r)).sum())(raw)
        np.testing.assert_allclose(grad, tau - TAU_FLOOR, rtol=1e-6)


def test_fixed_time_constants_are_state_not_parameters():
    learned = _model(dynamics_options={"tau_min": 2.0, "tau_max": 2.0})
    fixed = _model(dynamics_options={"tau_min": 2.0, "tau_max": 2.0, "learn_tau": False})
    n, d = 24, 2
    assert count_params(learned) - count_params(fixed) == n * d
    params = nnx.state(fixed, nnx.Param)  # what the optimizer updates
    assert "tau_log_excess" not in str(jax.tree_util.tree_structure(params))
    assert "tau_log_excess" in str(jax.tree_util.tree_structure(nnx.state(learned, nnx.Param)))
    np.testing.assert_allclose(fixed.core.dynamics.time_constants(), 2.0, rtol=1e-6)


def test_bad_time_constant_options():
    with pytest.raises(DynamicsError, match="tau_min"):
        _model(dynamics_options={"tau_min": 0.2})
    with pytest.raises(DynamicsError, match="tau_min"):
        _model(dynamics_options={"tau_min": 4.0, "tau_max": 2.0})
    with pytest.raises(DynamicsError, match="learn_tau"):
        _model(dynamics_options={"learn_tau": "yes"})
