"""tnd-train / tnd-eval / tnd-collect: config composition, bad inputs, evaluation of a run."""

import json
import subprocess
import warnings
import sys
from pathlib import Path

import pytest

from experiments import collect as collect_entry
from experiments import evaluate as eval_entry
from experiments import train as train_entry
from tnd.app.spec import load_spec
from tnd.envs import env_names
from tnd.graph import topology_names
from tnd.models import model_names
from tnd.training.config import ExperimentSpec
from tnd.app.experiment import model_options

from train_helpers import CONF, TINY, assert_one_readable_error, call_main, compose_cfg, data_root, train_tiny  # noqa: F401

GROUP_FILES = {g: sorted(p.stem for p in (Path(CONF) / g).glob("*.yaml")) for g in ("model", "graph", "env")}
GROUP_FILES["graph"].remove("plugin")  # conf/graph/plugin.yaml: the slot for a plugin's topology


def test_every_registered_name_has_a_config_file():
    assert set(GROUP_FILES["model"]) == set(model_names())
    assert set(GROUP_FILES["graph"]) == set(topology_names())
    assert set(GROUP_FILES["env"]) == set(env_names())


@pytest.mark.slow
def test_every_model_graph_env_combination_composes():
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        for model in GROUP_FILES["model"]:
            for graph in GROUP_FILES["graph"]:
                for env in GROUP_FILES["env"]:
                    overrides = [f"model={model}", f"graph={graph}", f"env={env}"]
                    spec = load_spec(overrides)  # graph= replaces a tuned topology, as in tnd-train
                    assert isinstance(spec, ExperimentSpec)
                    assert (spec.model.name, spec.graph.name, spec.env.name) == (model, graph, env)
                    options = model_options(spec)  # every option name is valid for the builder
                    if "topology" in options:
                        assert options["topology"] == graph


def test_smoke_experiment_and_launcher_presets_compose():
    cfg = compose_cfg("tnd_train", ["experiment=smoke"])
    assert cfg.train.steps <= 20 and cfg.data.num_episodes <= 2
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        for launcher in ("local_parallel", "slurm", "slurm_gpu", "local_submitit"):
            c = compose("tnd_train", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
            assert "_target_" in c.hydra.launcher
        assert compose("tnd_train", overrides=["hydra/launcher=local_parallel"],
                       return_hydra_config=True).hydra.launcher.n_jobs == 2


@pytest.mark.parametrize("override, fragment", [
    ("train.foo=1", "Could not override 'train.foo'"),
    ("train.steps=abc", "Error merging override train.steps=abc"),
    ("model.options.widht=3", "Could not override 'model.options.widht'"),
])
def test_wrong_type_or_unknown_key_fails_at_startup(override, fragment):
    with pytest.raises(Exception, match=fragment):
        compose_cfg("tnd_train", [override])


@pytest.mark.parametrize("argv, fragments", [
    (["model=nope"], ["Unknown model 'nope'", "lstm", "transformer"]),
    (["graph=nope"], ["Unknown graph 'nope'", "small_world"]),
    (["env=nope"], ["Unknown env 'nope'", "atari_pong"]),
    (["model.name=nope"], ["Unknown model 'nope'", "lstm"]),
    (["graph.name=nope", "model=sparse_rnn"], ["Unknown graph 'nope'", "small_world"]),
    (["env.name=nope"], ["Unknown env 'nope'", "atari_pong, pong"]),
    (["train.steps=0"], ["train.steps must be positive"]),
    (["train.batch_size=-4"], ["train.batch_size must be positive"]),
    (["data.num_episodes=0"], ["data.num_episodes must be a positive integer"]),
    (["param_budget=-5"], ["param_budget must be a positive integer"]),
    (["+model.options.widht=3"], ["Model 'lstm' has no option 'widht'", "hidden_size"]),
    (["plugins=[no_such_plugin_module]"], ["Cannot import plugin module 'no_such_plugin_module'", "PYTHONPATH"]),
    (["model=tnd", "graph=plugin"], ["graph.name is empty", "plugins=[my_topologies]"]),
])
def test_bad_input_gives_one_readable_error(argv, fragments, tmp_path, monkeypatch, capsys, data_root):
    run = tmp_path / "run"
    status = call_main(train_entry.main, [*TINY, f"data.root={data_root}", f"hydra.run.dir={run}", *argv], monkeypatch)
    assert status != 0
    assert_one_readable_error(capsys, *fragments)


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory, data_root):  # noqa: F811
    """One tiny tnd-train run (pong, lstm) shared by the tests below."""
    return train_tiny(tmp_path_factory.mktemp("lstm_run"), data_root)


def test_train_writes_summary_metrics_tensorboard_and_checkpoints(lstm_run):
    summary = json.loads((lstm_run / "summary.json").read_text())
    for key in ("catch_rate", "catches_per_round", "score", "points_won", "points_lost", "num_params",
                "train_seconds", "eval_seconds", "config_hash", "seed", "model", "env", "host_fraction"):
        assert key in summary, key
    rows = [json.loads(line) for line in (lstm_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert {"loss", "accuracy", "lr", "timesteps_per_s", "eval_catch_rate"} <= set(rows[0])
    assert list((lstm_run / "tensorboard").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (lstm_run / "checkpoints").iterdir() if p.name.isdigit()) == ["2", "4"]
    assert not (lstm_run / "error.json").exists()


def test_window_longer_than_every_episode(tmp_path, monkeypatch, capsys, data_root):  # noqa: F811
    status = call_main(train_entry.main, [*TINY, f"data.root={data_root}", f"hydra.run.dir={tmp_path}",
                                          "train.window=500"], monkeypatch)
    assert status == 1
    assert_one_readable_error(capsys, "longer than every episode", "longest: 100")
    error = json.loads((tmp_path / "error.json").read_text())
    assert "longer than every episode" in error["error"] and error["model"] == "lstm"


def test_checkpoint_from_a_different_model_is_refused(lstm_run, monkeypatch, capsys, data_root):  # noqa: F811
    status = call_main(train_entry.main, [*TINY, f"data.root={data_root}", f"hydra.run.dir={lstm_run}",
                                          "model.options.hidden_size=8"], monkeypatch)
    assert status == 1
    assert_one_readable_error(capsys, "written by a different model", "hidden_size")


def test_damaged_checkpoints_fall_back_to_the_newest_intact_one(lstm_run, tmp_path, monkeypatch, capsys, data_root):  # noqa: F811
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(lstm_run, run)
    (run / "error.json").unlink(missing_ok=True)
    (run / "summary.json").unlink()

    def garble(step: int) -> None:
        for f in (run / "checkpoints" / str(step)).rglob("*"):
            if f.is_file():
                f.write_bytes(b"garbage")

    from tnd.training.checkpoint import CheckpointWarning

    garble(4)
    argv = [*TINY, f"data.root={data_root}", f"hydra.run.dir={run}"]
    with pytest.warns(CheckpointWarning, match="checkpoint 4 is damaged; using checkpoint 2 instead") as caught:
        assert call_main(train_entry.main, argv, monkeypatch) == 0
    assert len(caught) == 1
    assert warnings.formatwarning(caught[0].message, CheckpointWarning, "f.py", 1).startswith(
        "tnd-train: warning: checkpoint 4 is damaged")  # the terminal shows it as one line
    assert "Traceback" not in capsys.readouterr().err
    assert json.loads((run / "summary.json").read_text())["resumed_from"] == 2

    garble(2)
    garble(4)
    assert call_main(train_entry.main, argv, monkeypatch) == 1
    assert_one_readable_error(capsys, "No intact checkpoint in", "cannot be read")


def test_dataset_that_does_not_match_the_env_config(tmp_path, monkeypatch, capsys, data_root):  # noqa: F811
    datasets = sorted(p for p in data_root.glob("demos-*") if (p / "COMPLETE").exists())
    assert datasets
    status = call_main(train_entry.main, [*TINY, f"data.path={datasets[0]}", f"hydra.run.dir={tmp_path}",
                                          "env.options.ball_speed=0.05"], monkeypatch)
    assert status == 1
    assert_one_readable_error(capsys, "was collected with config=", "ball_speed")


def test_rerun_in_the_same_folder_resumes(lstm_run, monkeypatch, capsys, data_root):  # noqa: F811
    status = call_main(train_entry.main, [*TINY, f"data.root={data_root}", f"hydra.run.dir={lstm_run}"], monkeypatch)
    assert status == 0
    assert json.loads((lstm_run / "summary.json").read_text())["resumed_from"] == 4


def test_eval_evaluates_a_run_folder_with_overrides(lstm_run, tmp_path, monkeypatch, capsys):
    status = call_main(eval_entry.main, [f"run_dir={lstm_run}", "eval.num_games=2", "eval.seed=77",
                                         "+eval.env_overrides.max_steps=50", f"hydra.run.dir={tmp_path}"], monkeypatch)
    assert status == 0
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["games"] == 2 and metrics["eval_seed"] == 77 and metrics["env_config"]["max_steps"] == 50
    assert metrics["checkpoint_step"] == 4 and metrics["model"] == "lstm"
    out = capsys.readouterr().out
    assert "catch rate" in out and str(tmp_path / "eval.json") in out  # one short line naming the file


def test_eval_of_a_folder_without_checkpoints(tmp_path, monkeypatch, capsys):
    status = call_main(eval_entry.main, [f"run_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'e'}"], monkeypatch)
    assert status == 1
    assert_one_readable_error(capsys, "No checkpoints in")


def test_collect_stores_then_reuses_the_dataset(tmp_path, monkeypatch, capsys):
    argv = ["data.num_episodes=1", "env.options.max_steps=60", f"data.root={tmp_path / 'data'}", "progress=false",
            f"hydra.run.dir={tmp_path / 'c'}"]
    assert call_main(collect_entry.main, argv, monkeypatch) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert call_main(collect_entry.main, argv, monkeypatch) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not first["reused"] and second["reused"] and first["path"] == second["path"]
    assert second["steps"] == 60 and second["episodes"] == 1


def test_console_script_prints_no_traceback(tmp_path):
    """The real CLI (a subprocess): a bad input is one line on stderr and exit status 1."""
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "train.steps=-1", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, cwd=Path(CONF).parent, timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "train.steps must be positive" in proc.stderr


PLUGIN = """
import networkx as nx
from tnd.graph import NeuronGraph, register_topology

@register_topology("plugin_ring")
def plugin_ring(n, *, rng, seed, num_sensory, num_motor):
    g = nx.cycle_graph(n, create_using=nx.DiGraph)
    return NeuronGraph.from_networkx(g, sensory=range(num_sensory), motor=range(n - num_motor, n), name="plugin_ring")
"""


@pytest.mark.slow
def test_a_plugin_topology_trains_from_the_terminal_and_evaluates_later(tmp_path, monkeypatch, capsys, data_root):  # noqa: F811
    from tnd.graph import topologies

    (tmp_path / "my_plugin_topologies.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)  # the launch directory holds the plugin module
    run = tmp_path / "run"
    argv = [*TINY, f"data.root={data_root}", f"hydra.run.dir={run}", "model=tnd", "graph=plugin",
            "graph.name=plugin_ring", "plugins=[my_plugin_topologies]"]
    evaluate = [f"run_dir={run}", "eval.num_games=1", f"hydra.run.dir={tmp_path / 'e'}"]
    try:
        assert call_main(train_entry.main, argv, monkeypatch) == 0
        summary = json.loads((run / "summary.json").read_text())
        assert summary["model"] == "tnd"
        origins = json.loads((run / "plugins.json").read_text())
        assert origins == {"my_plugin_topologies": str(tmp_path / "my_plugin_topologies.py")}
        # a later process has not imported the plugin ...
        topologies._TOPOLOGIES.pop("plugin_ring")
        sys.modules.pop("my_plugin_topologies")
        capsys.readouterr()
        # ... and tnd-eval does not import what the run folder names without the user's consent
        assert call_main(eval_entry.main, evaluate, monkeypatch) == 1
        assert_one_readable_error(capsys, "trained with plugin module(s) my_plugin_topologies (the run imported it from "
                                  f"{tmp_path / 'my_plugin_topologies.py'})", "plugins=[my_plugin_topologies]")
        assert "my_plugin_topologies" not in sys.modules
        # consent from another directory: the error says where the module was and how to reach it
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
        assert call_main(eval_entry.main, [*evaluate, "plugins=[my_plugin_topologies]"], monkeypatch) == 1
        assert_one_readable_error(capsys, "Cannot import plugin module 'my_plugin_topologies'", f"PYTHONPATH={tmp_path}")
        # consent where the module is importable: evaluated
        monkeypatch.chdir(tmp_path)
        assert call_main(eval_entry.main, [*evaluate, "plugins=[my_plugin_topologies]"], monkeypatch) == 0
        assert "plugin_ring" in topologies.topology_names()
    finally:
        topologies._TOPOLOGIES.pop("plugin_ring", None)
        sys.modules.pop("my_plugin_topologies", None)
