"""Issue 27: a run that cannot fit, or whose graph would take too long to build, is refused up
front with one line naming the setting(s) that drive it, the estimate and the memory available
(`tnd.app.memory`); the project's real configurations are never refused.

Everything here is closed-form arithmetic on composed configs: no graph, model, dataset or
compiled step is built for a refused run (the tests replace the builders with ones that fail),
and nothing depends on wall time or on this machine's memory (the available memory is given).
The closed-form counts are checked against small built models, and the activation estimate
against XLA's memory analysis of the compiled step (marked slow).
"""

from __future__ import annotations

import pytest
from flax import nnx

from experiments import train as train_entry
from tnd.app.spec import load_spec
from tnd.app import experiment, memory
from tnd.app.memory import (
    Available,
    ResourceError,
    check_resources,
    estimate_resources,
    graph_size,
    run_of,
)
from tnd.envs import get_env
from tnd.graph import build_topology
from tnd.models import count_params, effective_param_count

from train_helpers import assert_one_readable_error, call_main

GB = 1e9
THIS_MACHINE = Available(None, 23 * GB)  # a CPU machine with 23 GB available (the development machine)
MODELS = ("tnd", "rnn", "sparse_rnn", "lstm", "cfc", "transformer")


def spec_of(overrides: list[str]):
    return load_spec(overrides)


def shapes(spec):
    env = get_env(spec.env.name)
    config = env.make_config(spec.env.options)
    return env.obs_shape(config), env.num_actions(config), config


def check(overrides: list[str], available: Available = THIS_MACHINE, seeds: int = 1):
    spec = spec_of(overrides)
    obs_shape, num_actions, config = shapes(spec)
    return check_resources(spec, obs_shape, num_actions, experiment.model_options(spec), seeds=seeds,
                           env_config=config, available=available)


@pytest.fixture
def nothing_is_built(monkeypatch):
    """Graph generators, model builders and dataset loading fail if anything calls them."""
    def built(*args, **kwargs):
        raise AssertionError("something was built before the run was refused")

    from tnd.models import wiring

    for where, name in ((experiment, "build_agent"), (experiment, "load_dataset"), (experiment, "make_windows"),
                        (wiring, "build_topology")):
        monkeypatch.setattr(where, name, built)


# ------------------------------------------------------------------ the real configurations
REAL = [[f"model={m}", "experiment=pong_table", f"scale={s}"] for m in MODELS for s in ("default", "paper")]
REAL += [[f"model={m}", "experiment=pong_table", "env=atari_pong"] for m in MODELS]
REAL += [[f"model={m}", "experiment=smoke"] for m in MODELS]


@pytest.mark.parametrize("overrides", REAL, ids=lambda o: ",".join(o))
def test_the_real_configurations_are_far_below_the_limit(overrides):
    estimate = check(overrides, seeds=5)  # tnd-table stacks each model's 5 seeds in one program
    assert estimate.total_bytes < 0.02 * THIS_MACHINE.host_bytes, estimate  # < 460 MB for the 5 seeds
    assert estimate.build_seconds < 1.0
    assert estimate.params is not None and estimate.params < 100_000
    check(overrides, Available(None, 2 * GB), seeds=5)  # a machine with 2 GB available runs them too
    on_a_gpu = check(overrides, Available(2 * GB, 4 * GB, "NVIDIA H100 80GB HBM3"), seeds=5)
    assert on_a_gpu.total_bytes == estimate.total_bytes


ABLATION = [[f"graph={g}", f"model.options.inner_rounds={k}", f"model.options.dynamics={d}", f"model.options.interaction={i}"]
            for g in ("layered_ncp", "fully_connected", "small_world") for k in (1, "auto") for d in ("leaky", "gated")
            for i in ("scalar", "lowrank")]


@pytest.mark.parametrize("overrides", ABLATION, ids=lambda o: ",".join(v.partition("=")[2] for v in o))
def test_the_ablation_variants_fit(overrides):
    estimate = check(["model=tnd", "experiment=tnd_ablation", "tuned=none", *overrides])
    assert estimate.total_bytes < 1 * GB, estimate  # measured by XLA: 230-340 MB for the largest (layered_ncp, K = 4)


def test_the_table_models_are_sized_to_their_budget():
    for model in MODELS:
        estimate = check([f"model={model}", "experiment=pong_table"])
        assert abs(estimate.params - 9000) <= 0.1 * 9000 or model == "sparse_rnn", (model, estimate.params)


# ------------------------------------------------------------------ the bad settings of issue 27
BAD = [
    (["model=tnd", "experiment=smoke", "model.options.num_neurons=1000000", "model.options.state_dim=8"], "model.options.num_neurons=1000000",
     "one training step's activations"),
    (["model=tnd", "experiment=smoke", "graph=layered_ncp", "model.options.num_neurons=1000000"],
     "model.options.num_neurons=1000000", "building the layered_ncp graph on 1,000,000 neurons"),
    (["model=sparse_rnn", "experiment=smoke", "model.options.num_neurons=1000000"], "model.options.num_neurons=1000000",
     "building the layered_ncp graph"),
    (["model=tnd", "experiment=smoke", "graph=small_world", "model.options.num_neurons=100000000"],
     "model.options.num_neurons=100000000", "building the small_world graph"),
    (["experiment=smoke", "param_budget=1000000000"], "param_budget=1000000000", "the parameters and optimizer state"),
    (["model=sparse_rnn", "experiment=smoke", "param_budget=1000000000"], "param_budget=1000000000",
     "layered_ncp graphs that sizing sparse_rnn to param_budget=1000000000 tries"),
    (["experiment=smoke", "train.batch_size=100000000"], "train.batch_size=100000000", "one training step's activations"),
    (["model=tnd", "experiment=smoke", "model.options.state_dim=100000"], "model.options.state_dim=100000",
     "one training step's activations"),
    (["model=tnd", "experiment=smoke", "model.options.inner_rounds=1000000"], "model.options.inner_rounds=1000000",
     "1000000 rounds of 32 neurons"),
    (["model=transformer", "experiment=smoke", "train.window=100000"], "train.window=100000",
     "one training step's activations"),
    (["experiment=smoke", "data.num_episodes=100000000"], "data.num_episodes=100000000", "the dataset"),
]


@pytest.mark.parametrize("overrides,setting,what", BAD, ids=lambda x: x[-1] if isinstance(x, list) else None)
def test_each_bad_setting_is_refused_in_one_line_naming_it(overrides, setting, what, nothing_is_built):
    with pytest.raises(ResourceError) as refused:
        check(overrides)
    message = str(refused.value)
    assert isinstance(refused.value, ValueError)  # report_errors prints it as one line
    assert "\n" not in message
    assert message.startswith(setting), message
    assert what in message, message
    assert f"lower {setting.partition('=')[0]}" in message, message
    if "building" not in message:
        assert "this machine has 23 GB available" in message and "train.memory_fraction" in message, message


def test_the_message_gives_the_estimate_and_the_available_memory():
    with pytest.raises(ResourceError) as refused:
        check(["experiment=smoke", "train.batch_size=100000000"])
    assert str(refused.value) == (
        "train.batch_size=100000000 needs about 8 TB of memory, 8 TB of it for one training step's activations "
        "(batch 100,000,000 × window 16 × 1,043 floats per step); this machine has 23 GB available and a run may "
        "plan on 80% of it (train.memory_fraction): lower train.batch_size."
    )


def test_two_settings_that_drive_it_together_are_both_named():
    with pytest.raises(ResourceError) as refused:
        check(["model=lstm", "experiment=smoke", "train.batch_size=300000", "train.window=300000"])
    message = str(refused.value)  # either one at its default (32, 64) still needs 48 or 96 GB
    assert message.startswith("train.batch_size=300000 and train.window=300000 need about"), message
    assert message.endswith("lower train.batch_size, train.window."), message


def test_on_an_accelerator_its_free_memory_is_the_limit():
    gpu = Available(80 * GB, 200 * GB, "NVIDIA H100 80GB HBM3")
    with pytest.raises(ResourceError, match=r"of NVIDIA H100 80GB HBM3 memory.*this NVIDIA H100 80GB HBM3 has 80 GB free"):
        check(["experiment=smoke", "train.batch_size=100000000"], gpu)
    # 19 GB of activations and parameters do not fit in 23 GB of host memory, but they do in 80 GB of GPU memory
    check(["model=tnd", "experiment=smoke", "model.options.num_neurons=1000000"], gpu)
    with pytest.raises(ResourceError, match="of host memory"):  # the dataset's host copy stays on the host
        check(["experiment=smoke", "data.num_episodes=10000000"], Available(800 * GB, 23 * GB, "gpu"))


def test_memory_fraction_is_a_setting_and_changes_no_result():
    overrides = ["model=tnd", "experiment=smoke", "model.options.num_neurons=1000000", "model.options.state_dim=8"]  # ~19 GB
    with pytest.raises(ResourceError, match="may plan on 80% of it"):
        check(overrides)
    check([*overrides, "train.memory_fraction=1.0"])  # 19 GB of 23 GB
    with pytest.raises(ResourceError, match="may plan on 10% of it"):
        check(["experiment=smoke", "train.memory_fraction=0.1", "train.batch_size=1000000"])
    with pytest.raises(ResourceError, match="train.memory_fraction must be a positive number"):
        check(["experiment=smoke", "train.memory_fraction=0"])
    assert experiment.config_hash(spec_of(["train.memory_fraction=0.5"])) == experiment.config_hash(spec_of([]))


def test_inner_rounds_are_bounded_by_memory_alone():
    """The core scans over its rounds (its compile time no longer grows with K), so K needs no
    bound of its own: K = 100 runs (issue 27's 'hang'), and the estimate grows linearly in K."""
    k1, k2, k100 = (check(["model=tnd", "experiment=smoke", f"model.options.inner_rounds={k}"]) for k in (1, 2, 100))
    act = lambda e: next(p.bytes for p in e.parts if p.what == "one training step's activations")
    assert act(k100) - act(k1) == pytest.approx(99 * (act(k2) - act(k1)))
    assert k100.total_bytes < 0.1 * GB


def test_a_budget_out_of_reach_is_left_to_the_budget_search():
    """TND on small_world cannot reach 10^9 parameters below the search's largest width: the
    search says so itself (BudgetError) after building graphs that take about 2 s in all."""
    estimate = check(["model=tnd", "experiment=smoke", "param_budget=1000000000"])
    assert estimate.params is None and estimate.build_seconds < 10


# ------------------------------------------------------------------ through tnd-train
@pytest.mark.parametrize("override,setting", [("train.batch_size=100000000", "train.batch_size=100000000"),
                                              ("model.options.state_dim=100000", "model.options.state_dim=100000"),
                                              ("model.options.num_neurons=1000000", "model.options.num_neurons=1000000")])
def test_tnd_train_refuses_before_building_anything(tmp_path, monkeypatch, capsys, nothing_is_built, override, setting):
    monkeypatch.setattr(memory.check, "available_memory", lambda: THIS_MACHINE)  # what check_resources calls
    argv = ["model=tnd", "experiment=smoke", "graph=layered_ncp", override, f"hydra.run.dir={tmp_path}",
            f"data.root={tmp_path / 'data'}"]
    assert call_main(train_entry.main, argv, monkeypatch) == 1
    err = assert_one_readable_error(capsys, f"tnd-train: error: {setting}", f"lower {setting.partition('=')[0]}")
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert (tmp_path / "error.json").is_file() and not (tmp_path / "data").exists()


def test_available_memory_reads_this_machine():
    available = memory.available_memory()
    assert available.host_bytes is None or available.host_bytes > 0
    import jax

    if jax.default_backend() == "cpu":
        assert available.device_bytes is None
    else:
        assert available.device_bytes is None or available.device_bytes > 0


# ------------------------------------------------------------------ the closed forms against the real thing
COUNTED = [
    ["model=rnn"], ["model=lstm"], ["model=cfc"], ["model=cfc", "model.options.mode=pure"],
    ["model=cfc", "model.options.backbone_layers=2"], ["model=cfc", "model.options.wired=true", "graph=small_world"],
    ["model=transformer"], ["model=transformer", "model.options.num_heads=4", "model.options.num_layers=3"],
    ["model=sparse_rnn", "graph=small_world"], ["model=tnd"], ["model=tnd", "graph=fully_connected"],
    ["model=tnd", "tuned=none", "graph=ring", "model.options.interaction=lowrank", "model.options.dynamics=gated"],
    ["model=tnd", "tuned=none", "graph=lattice", "model.options.interaction=plastic", "model.options.dynamics=cfc"],
    ["model=tnd", "graph=small_world", "model.options.sharing=per_neuron", "model.options.edge_gate=true"],
    ["model=tnd", "tuned=none", "graph=lattice", "model.options.input_neurons=all", "model.options.readout=all",
     "model.options.sharing=per_type"],
    ["model=tnd", "env=atari_pong", "env.options.obs_mode=pixels"],
    ["model=lstm", "env=atari_pong", "env.options.obs_mode=pixels", "env.options.obs_history=4"],
]


@pytest.mark.parametrize("overrides", COUNTED, ids=lambda o: ",".join(o))
def test_closed_form_parameter_counts_equal_the_built_models(overrides):
    spec = spec_of(["experiment=smoke", *overrides])
    obs_shape, num_actions, config = shapes(spec)
    estimate = estimate_resources(spec, obs_shape, num_actions, experiment.model_options(spec), env_config=config)
    model = nnx.eval_shape(lambda: experiment.build_agent(spec, obs_shape, num_actions)[0])  # abstract: no arrays
    assert estimate.params == count_params(model)
    run = run_of(spec, obs_shape, num_actions, experiment.model_options(spec), env_config=config)
    assert memory.model_size(run, estimate.width).counted == effective_param_count(model)


def test_the_topology_defaults_are_the_builders():
    import inspect

    from tnd.graph import topologies

    for name, defaults in memory.TOPOLOGY_DEFAULTS.items():
        parameters = inspect.signature(getattr(topologies, name)).parameters
        assert {k: parameters[k].default for k in defaults} == defaults, name


@pytest.mark.parametrize("topology,options", [
    ("fully_connected", {}), ("small_world", {"k": 6, "p": 0.2}), ("ring", {"k": 2}), ("ring", {"bidirectional": False}),
    ("lattice", {}), ("layered_ncp", {"density": 0.5}), ("layered_ncp", {"density": 0.2}), ("erdos_renyi", {"p": 0.1}),
    ("scale_free", {"m": 3}), ("modular", {}),
])
@pytest.mark.parametrize("neurons", [64, 300])
def test_closed_form_graph_sizes_match_the_generators(topology, options, neurons):
    graph = build_topology(topology, neurons, seed=0, **options)
    size = graph_size(topology, neurons, options)
    assert abs(size.edges - graph.num_edges) <= 0.12 * graph.num_edges + 8, (size.edges, graph.num_edges)
    assert size.distance == graph.sensory_motor_hops or topology in ("erdos_renyi", "scale_free", "modular")
    assert size.types == graph.num_types


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["model=lstm", "model.options.hidden_size=256"], ["model=tnd", "model.options.num_neurons=128"],
])
def test_the_activation_estimate_tracks_xla_memory_analysis(overrides):
    """The estimate of a training step's activations is within a factor of 0.7..1.6 of the
    temporaries XLA allocates for the compiled step (measured 0.93..1.32 over every model kind)."""
    import jax
    import jax.numpy as jnp

    from tnd.training.optimizer import make_optimizer
    from tnd.training.step import make_train_step

    spec = spec_of(["experiment=smoke", "train.batch_size=32", "train.window=64", *overrides])
    obs_shape, num_actions, config = shapes(spec)
    estimate = estimate_resources(spec, obs_shape, num_actions, experiment.model_options(spec), env_config=config)
    model, _, _ = experiment.build_agent(spec, obs_shape, num_actions)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx, schedule = make_optimizer(lr=1e-3, steps=10, warmup_steps=1, min_lr_ratio=0.1, weight_decay=0.0, clip_norm=1.0)
    steps = 1000
    arrays = {"observations": jax.ShapeDtypeStruct((steps, *obs_shape), jnp.float32),
              "actions": jax.ShapeDtypeStruct((steps,), jnp.int32), "episode_start": jax.ShapeDtypeStruct((steps,), bool),
              "starts": jax.ShapeDtypeStruct((steps - 64,), jnp.int32), "num_windows": jax.ShapeDtypeStruct((), jnp.int32)}
    step = make_train_step(graphdef, tx, schedule, batch_size=32, window=64)
    compiled = step.lower(params, rest, tx.init(params), arrays, jnp.ones(num_actions), jax.random.key(0),
                          jnp.asarray(0, jnp.int32)).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    activations = next(p.bytes for p in estimate.parts if p.what == "one training step's activations")
    assert 0.7 < activations / temp < 1.6, (activations, temp)
