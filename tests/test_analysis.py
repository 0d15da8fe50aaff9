"""The analysis library: Lyapunov exponents on systems with known answers, state
trajectories, activity, effective rank, and the plot helpers on tiny inputs."""

import json
import math

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from flax import nnx

from tnd import analysis
from tnd.analysis import AnalysisError, lyapunov_exponents
from tnd.graph.neuron_graph import NeuronGraph
from tnd.models.base import SequenceModel
from tnd.models.encoders import make_io
from tiny_models import TinyRNN as SharedTinyRNN

OBS = (4,)


# ---------------------------------------------------------------------- tiny models
def TinyRNN(hidden=5, *, rngs):
    """Encoder -> nnx.SimpleCell -> head; carry ``[B, H]`` (tests/tiny_models.py on OBS)."""
    return SharedTinyRNN(hidden, rngs=rngs, obs_shape=OBS, features=6, num_actions=3)


class TinyNeurons(SequenceModel):
    """A TND-shaped core: carry ``[B, N, d]``, each neuron mixes its own d dims."""

    def __init__(self, n=3, d=2, *, rngs):
        self.n, self.d = n, d
        self.encoder, self.head = make_io(OBS, 6, n * d, 3, rngs=rngs)
        self.inp = nnx.Linear(6, n * d, rngs=rngs)
        self.mix = nnx.Param(0.5 * jnp.eye(d))

    def initial_state(self, batch_size):
        return jnp.zeros((batch_size, self.n, self.d))

    def core_step(self, carry, features):
        u = self.inp(features).reshape(-1, self.n, self.d)
        h = jnp.tanh(carry @ self.mix[...] + u)
        return h, h.reshape(h.shape[0], -1)


def _observations(batch, steps, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (batch, steps) + OBS)


# ---------------------------------------------------------------------- known answers
def test_top_k_exponents_of_a_diagonal_map_are_log_abs_eigenvalues():
    eigenvalues = jnp.array([0.5, -2.0, 1.0, 0.9, 0.1])
    a = jnp.diag(eigenvalues)
    lam = lyapunov_exponents(lambda c, x: a @ c, jnp.zeros(5), jnp.zeros((300,)), num_exponents=5, burn_in=50)
    np.testing.assert_allclose(lam, np.sort(np.log(np.abs(eigenvalues)))[::-1], atol=1e-4)


def test_largest_exponent_of_a_normal_matrix_is_log_spectral_radius():
    # A rotation scaled by 0.8 (complex eigenvalues 0.8 e^{+-i theta}) next to 0.3:
    # a normal matrix with spectral radius 0.8, conjugated by an orthogonal matrix.
    theta = 0.7
    rot = 0.8 * jnp.array([[jnp.cos(theta), -jnp.sin(theta)], [jnp.sin(theta), jnp.cos(theta)]])
    block = jax.scipy.linalg.block_diag(rot, jnp.array([[0.3]]))
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(3), (3, 3)))
    a = q @ block @ q.T
    lam = lyapunov_exponents(lambda c, x: a @ c, jnp.zeros(3), jnp.zeros((400,)))
    assert lam.shape == (1,)
    np.testing.assert_allclose(lam[0], math.log(0.8), atol=2e-3)
    # Top 2: the rotation block's two exponents are both log 0.8.
    lam2 = lyapunov_exponents(lambda c, x: a @ c, jnp.zeros(3), jnp.zeros((400,)), num_exponents=3, burn_in=20)
    np.testing.assert_allclose(lam2, [math.log(0.8), math.log(0.8), math.log(0.3)], atol=2e-3)


@pytest.mark.parametrize("a", [0.5, -3.0, 1.0, 1.7])
def test_scalar_map_exponent_is_log_abs_slope(a):
    lam = lyapunov_exponents(lambda c, x: a * c + x, jnp.float32(0.0), jnp.zeros((50,)))
    np.testing.assert_allclose(lam, [math.log(abs(a))], atol=1e-5)


def test_vmap_over_episodes_gives_one_exponent_each():
    slopes = jnp.array([0.25, 1.0, 4.0])
    keys = jax.random.split(jax.random.PRNGKey(0), 3)

    def step(c, s):
        return s * c

    lam = jax.vmap(lambda s, k: lyapunov_exponents(step, jnp.float32(1.0), jnp.full((30,), s), key=k))(slopes, keys)
    np.testing.assert_allclose(lam[:, 0], np.log(slopes), atol=1e-5)


def test_logistic_map_at_r4_has_exponent_ln2():
    lam = lyapunov_exponents(lambda c, x: 4.0 * c * (1.0 - c), jnp.float32(0.3), jnp.zeros((4000,)), burn_in=100)
    np.testing.assert_allclose(lam, [math.log(2.0)], atol=0.03)


def test_state_dependent_jacobian_is_followed_along_the_trajectory():
    # x -> tanh(2 x): from x0 = 0 the trajectory stays at the fixed point 0 (slope 2);
    # from x0 = 3 it converges to the stable fixed point x* = tanh(2 x*) with slope
    # 2 (1 - x*^2) < 1.
    step = lambda c, x: jnp.tanh(2.0 * c)
    assert lyapunov_exponents(step, jnp.float32(0.0), jnp.zeros((100,)))[0] == pytest.approx(math.log(2), abs=1e-5)
    x_star = 0.9575040240772687
    lam = lyapunov_exponents(step, jnp.float32(3.0), jnp.zeros((400,)), burn_in=100)
    assert lam[0] == pytest.approx(math.log(2 * (1 - x_star**2)), abs=1e-3)


def test_renormalising_less_often_gives_the_same_exponents():
    a = jnp.diag(jnp.array([1.2, 0.6, 0.3]))
    every_step = lyapunov_exponents(lambda c, x: a @ c, jnp.zeros(3), jnp.zeros((203,)), num_exponents=2)
    every_7 = lyapunov_exponents(
        lambda c, x: a @ c, jnp.zeros(3), jnp.zeros((203,)), num_exponents=2, renormalize_every=7
    )
    np.testing.assert_allclose(every_7, every_step, atol=1e-4)


def test_skipped_steps_are_not_counted():
    # Every 5th step resets the carry (Jacobian 0); the dynamics between resets is x -> 2x.
    steps = 40
    resets = jnp.arange(steps) % 5 == 0
    step = lambda c, x: jnp.where(x, 0.0, 2.0 * c)
    lam = lyapunov_exponents(step, jnp.float32(1.0), resets, skip=resets)
    np.testing.assert_allclose(lam, [math.log(2.0)], atol=1e-5)


def test_pytree_carry_with_integer_leaves():
    def step(c, x):
        return {"h": (0.5 * c["h"][0] + x, 3.0 * c["h"][1]), "count": c["count"] + 1}

    carry0 = {"h": (jnp.ones(2), jnp.ones(())), "count": jnp.int32(0)}
    lam = lyapunov_exponents(step, carry0, jnp.ones((60, 2)), num_exponents=3, burn_in=10)
    np.testing.assert_allclose(lam, np.log([3.0, 0.5, 0.5]), atol=1e-4)


def test_bad_arguments_give_one_readable_error():
    with pytest.raises(AnalysisError, match="exceeds the state dimension"):
        lyapunov_exponents(lambda c, x: c, jnp.zeros(2), jnp.zeros((5,)), num_exponents=3)
    with pytest.raises(AnalysisError, match="burn_in"):
        lyapunov_exponents(lambda c, x: c, jnp.zeros(2), jnp.zeros((5,)), burn_in=5)
    with pytest.raises(AnalysisError, match="observations"):
        analysis.model_lyapunov(TinyRNN(rngs=nnx.Rngs(0)), jnp.zeros((3, 4)))


# ---------------------------------------------------------------------- models
def test_model_lyapunov_is_finite_with_the_right_shape():
    model = TinyRNN(rngs=nnx.Rngs(0))
    obs = _observations(3, 12)
    lam = analysis.model_lyapunov(model, obs, num_exponents=2, key=jax.random.PRNGKey(1))
    assert lam.shape == (3, 2)
    assert np.all(np.isfinite(lam))
    assert np.all(lam[:, 0] >= lam[:, 1])
    # One value per episode: episode 1 alone gives the same numbers as in the batch.
    resets = jnp.zeros((3, 12), bool).at[:, 6].set(True)
    lam_r = analysis.model_lyapunov(TinyNeurons(rngs=nnx.Rngs(0)), obs, resets=resets)
    assert lam_r.shape == (3, 1) and np.all(np.isfinite(lam_r))


def test_model_lyapunov_measures_the_core_not_the_encoder():
    # h' = tanh(W_i f + W_h h) with W_i = 0, W_h = 0.5 I: h stays at 0 and the Jacobian is
    # 0.5 I, whatever the observations: every exponent is log 0.5 (also across a reset).
    model = TinyRNN(hidden=4, rngs=nnx.Rngs(0))
    model.cell.dense_i.kernel[...] = jnp.zeros_like(model.cell.dense_i.kernel[...])
    model.cell.dense_h.kernel[...] = 0.5 * jnp.eye(4)
    obs = _observations(2, 10)
    resets = jnp.zeros((2, 10), bool).at[1, 4].set(True)
    lam = analysis.model_lyapunov(model, obs, resets=resets, num_exponents=4)
    np.testing.assert_allclose(lam, np.full((2, 4), math.log(0.5)), atol=1e-5)


def test_state_trajectory_matches_the_harness():
    model = TinyRNN(rngs=nnx.Rngs(0))
    obs = _observations(2, 7)
    resets = jnp.zeros((2, 7), bool).at[0, 3].set(True)
    traj = analysis.state_trajectory(model, obs, resets=resets)
    final, _ = model(obs, resets=resets)
    assert traj.flat.shape == (2, 7, 5)
    assert traj.neurons is None
    np.testing.assert_allclose(traj.flat[:, -1], final, atol=1e-6)
    carry = model.initial_state(2)
    for t in range(3):
        carry, _ = model.step(carry, obs[:, t])
    np.testing.assert_allclose(traj.flat[1, 2], carry[1], atol=1e-6)


def test_state_trajectory_has_a_neuron_view_for_tnd_states():
    model = TinyNeurons(n=3, d=2, rngs=nnx.Rngs(0))
    obs = _observations(2, 5)
    traj = analysis.state_trajectory(model, obs)
    assert traj.neurons.shape == (2, 5, 3, 2)
    assert traj.flat.shape == (2, 5, 6)
    np.testing.assert_allclose(traj.neurons.reshape(2, 5, 6), traj.flat)
    final, _ = model(obs)
    np.testing.assert_allclose(traj.neurons[:, -1], final, atol=1e-6)
    assert analysis.neuron_activity(traj)["mean_abs"].shape == (3,)


# ---------------------------------------------------------------------- activity, rank
def test_neuron_activity_statistics():
    # [B=1, T=4, N=2, d=1]: neuron 0 alternates +-1, neuron 1 is constant 3.
    h = jnp.array([[[[1.0], [3.0]], [[-1.0], [3.0]], [[1.0], [3.0]], [[-1.0], [3.0]]]])
    act = analysis.neuron_activity(h)
    np.testing.assert_allclose(act["mean_abs"], [1.0, 3.0])
    np.testing.assert_allclose(act["variance"], [1.0, 0.0])
    np.testing.assert_allclose(act["max_abs"], [1.0, 3.0])
    flat = analysis.neuron_activity(h[..., 0])  # [B, T, D]: every scalar a neuron
    np.testing.assert_allclose(flat["variance"], [1.0, 0.0])


def test_effective_rank_of_rank_one_and_isotropic_trajectories():
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    direction = jax.random.normal(key1, (8,))
    coefficients = jnp.sin(jnp.arange(500.0) / 7.0) + 2.0
    rank_one = coefficients[:, None] * direction[None, :]
    assert float(analysis.effective_rank(rank_one)) == pytest.approx(1.0, abs=1e-2)
    isotropic = jax.random.normal(key2, (2, 4000, 8))
    erank = analysis.effective_rank(isotropic)
    assert erank.shape == (2,)
    np.testing.assert_allclose(erank, 8.0, atol=0.15)
    # Without centring, a constant offset is one more direction.
    assert float(analysis.effective_rank(rank_one + 5.0, center=False)) > 1.2


# ---------------------------------------------------------------------- plots
def _graph():
    g = nx.DiGraph()
    g.add_edges_from([("in", "a"), ("a", "b"), ("b", "a"), ("a", "out"), ("b", "out"), ("in", "b")])
    return NeuronGraph.from_networkx(g, sensory=["in"], motor=["out"], name="tiny")


def _saved(path):
    return path.exists() and path.stat().st_size > 1000


def test_plot_topology_with_and_without_edge_weights(tmp_path):
    graph = _graph()
    fig = analysis.plot_topology(graph, path=tmp_path / "plain.png")
    assert _saved(tmp_path / "plain.png") and fig.axes
    weights = np.linspace(-1.0, 1.0, graph.num_edges)
    weights[2] = 0.0  # a pruned edge
    analysis.plot_topology(graph, weights, path=tmp_path / "weights.png")
    analysis.plot_topology(graph, np.ones((graph.num_neurons,) * 2), path=tmp_path / "matrix.png", layout="circular")
    analysis.plot_topology(graph, {("a", "b"): 2.0}, path=tmp_path / "sub" / "dict.svg")
    assert all(_saved(tmp_path / p) for p in ("weights.png", "matrix.png", "sub/dict.svg"))
    with pytest.raises(AnalysisError, match="edge_weights"):
        analysis.plot_topology(graph, np.ones(graph.num_edges + 1))


def test_plot_state_trajectories(tmp_path):
    traj = analysis.state_trajectory(TinyNeurons(rngs=nnx.Rngs(0)), _observations(2, 9))
    events = np.zeros(9, bool)
    events[[3, 7]] = True
    analysis.plot_state_trajectories(traj, path=tmp_path / "neurons.png", events=events, batch_index=1)
    analysis.plot_state_trajectories(np.random.randn(9, 4), neurons=[0, 3], path=tmp_path / "flat.png", events=[2])
    assert _saved(tmp_path / "neurons.png") and _saved(tmp_path / "flat.png")
    with pytest.raises(AnalysisError, match="neurons"):
        analysis.plot_state_trajectories(traj, neurons=[5])


def test_plot_training_curves_tolerates_missing_keys_and_eval_lines(tmp_path):
    run_a = tmp_path / "run_a" / "metrics.jsonl"
    run_b = tmp_path / "run_b" / "metrics.jsonl"
    run_a.parent.mkdir()
    run_b.parent.mkdir()
    lines_a = [{"step": s, "loss": 1.0 / (s + 1), "accuracy": s / 10} for s in range(5)]
    lines_a.insert(2, {"step": 2, "eval/catch_rate": 0.5})
    run_a.write_text("\n".join(json.dumps(r) for r in lines_a) + "\n\n")
    run_b.write_text(
        "\n".join(json.dumps({"step": s, "train/loss": 2.0 / (s + 1)}) for s in range(4)) + '\n{"step": 4, "lo'
    )
    with pytest.warns(UserWarning, match="skipped"):
        fig = analysis.plot_training_curves(
            [run_a, run_b], keys=("loss", "accuracy", "missing"), path=tmp_path / "curves.png"
        )
    assert _saved(tmp_path / "curves.png")
    loss_ax, accuracy_ax, missing_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(accuracy_ax.lines) == 1 and len(missing_ax.lines) == 0
    np.testing.assert_allclose(loss_ax.lines[0].get_xdata(), range(5))


def test_plot_stability(tmp_path):
    results = {"tnd": np.array([[-0.3], [-0.2], [-0.25]]), "lstm": np.array([-0.05, 0.01]), "rnn": [0.1]}
    fig = analysis.plot_stability(results, path=tmp_path / "stability.pdf")
    assert _saved(tmp_path / "stability.pdf")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["tnd", "lstm", "rnn"]
