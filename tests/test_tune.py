"""tnd-tune: search spaces, a tiny study that runs, resumes after a crash, and writes a config that trains."""

import json
import subprocess
import sys
import time

import optuna

from tnd.app.spec import load_spec
import pytest
import yaml
from train_helpers import TINY, call_main, data_root  # noqa: F401  (fixture)

from experiments import train as train_cli
from experiments import tune as tune_cli
from tnd.tuning import SearchSpace, SearchSpaceError, StudySettings, open_study, study_summary
from tnd.tuning.study import TuneError, counted_trials, finished_trials

SPACE = {
    "train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "graph": {"type": "categorical", "choices": ["ring", "small_world"]},
    "model.options.dynamics": {"type": "categorical", "choices": ["leaky", "gated"]},
    "model.options.dynamics_options.tau_max": {"type": "float", "low": 2.0, "high": 8.0,
                                               "when": {"model.options.dynamics": "leaky"}},
}


def test_space_samples_conditions_and_writes_overrides():
    space = SearchSpace.from_dict(SPACE)
    leaky = optuna.trial.FixedTrial({"train.lr": 0.004, "graph": "ring", "model.options.dynamics": "leaky",
                                     "model.options.dynamics_options.tau_max": 3.0})
    values = space.sample(leaky)
    assert space.overrides(values) == [
        "++train.lr=0.004", "graph=ring", "++model.options.dynamics=leaky", "++model.options.dynamics_options.tau_max=3.0",
    ]
    gated = optuna.trial.FixedTrial({"train.lr": 0.004, "graph": "ring", "model.options.dynamics": "gated"})
    assert "model.options.dynamics_options.tau_max" not in space.sample(gated)  # leaky-only option


@pytest.mark.parametrize("bad, match", [
    ({}, "empty"),
    ({"a.b": {"type": "uniform", "low": 0, "high": 1}}, "type must be"),
    ({"a.b": {"type": "float", "low": 2, "high": 1}}, "low <= high"),
    ({"a.b": {"type": "float", "low": 0, "high": 1, "log": True}}, "low > 0"),
    ({"a.b": {"type": "float", "low": 0}}, "needs 'high'"),
    ({"a.b": {"type": "categorical", "choices": []}}, "at least one"),
    ({"a.b": {"type": "int", "low": 0, "high": 3, "when": {"c.d": 1}}}, "not an earlier"),
    ({"a.b": {"type": "int", "low": 0, "high": 3, "sigma": 1}}, "unknown field"),
])
def test_malformed_spaces_are_one_readable_error(bad, match):
    with pytest.raises(SearchSpaceError, match=match):
        SearchSpace.from_dict(bad)


def test_every_model_has_a_space_with_the_shared_optimizer_settings():
    from tnd.models import model_names

    for name in model_names():
        space = tune_cli.load_space(name)
        keys = {p.key for p in space.params}
        assert {"train.lr", "train.weight_decay"} <= keys, name
    with pytest.raises(TuneError, match="No search space"):
        tune_cli.load_space("no_such_model")


def test_trials_never_play_the_test_games(monkeypatch):
    from hydra import compose, initialize_config_dir

    monkeypatch.setattr(tune_cli, "absolute", lambda path: path)  # no Hydra run here

    with initialize_config_dir(config_dir=tune_cli.CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="tnd_tune", overrides=["model=lstm"])
        spec, test_seed = tune_cli.trial_spec(cfg, [])
    assert test_seed == 1_000_003  # the table's test games
    assert spec.eval.seed != test_seed and spec.eval.validation_seed != test_seed
    assert spec.param_budget == 9000  # the table's budget


def test_trials_train_as_long_as_the_table_and_hyperband_prunes_them(monkeypatch):
    """A trial's length is the table's (3,000 steps); its reports are Hyperband's rungs."""
    from hydra import compose, initialize_config_dir

    monkeypatch.setattr(tune_cli, "absolute", lambda path: path)
    with initialize_config_dir(config_dir=tune_cli.CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="tnd_tune", overrides=["model=tnd"])
        trial, _ = tune_cli.trial_spec(cfg, [])
        table = load_spec(["experiment=pong_table", "model=tnd", "tuned=none"])
    assert trial.train.steps == table.train.steps == 3000
    assert (trial.train.lr, trial.train.warmup_steps, trial.train.batch_size) == \
        (table.train.lr, table.train.warmup_steps, table.train.batch_size)
    assert cfg.study.n_trials >= 24 and cfg.study.pruner == "hyperband"
    settings = StudySettings(name="s", storage="unused.db", min_resource=trial.train.eval_every,
                             max_resource=trial.train.steps)
    pruner = settings.make_pruner()
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert settings.describe_pruner() == "Hyperband(min_resource=500, max_resource=3000, reduction_factor=3)"


def test_each_trial_trains_its_own_seed(tmp_path, monkeypatch):
    """The graph and initial weights are the model's randomness: trial n trains seed seed_base + n."""
    from hydra import compose, initialize_config_dir

    seen = []
    monkeypatch.setattr(tune_cli, "absolute", lambda path: str(tmp_path / path))

    def fake_run(spec, run_dir, on_eval, overrides=None):
        seen.append(spec.seed)
        return {"catch_rate": 0.5, "catches_per_round": 1.0, "num_params": 1, "train_seconds": 0.0,
                "config_hash": "x", "train_steps": spec.train.steps}

    monkeypatch.setattr("tnd.app.experiment.run_experiment", fake_run)
    with initialize_config_dir(config_dir=tune_cli.CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="tnd_tune", overrides=[
            "model=lstm", "study.n_trials=3", "study.n_startup_trials=3", "trial.seed_base=10",
            "write_tuned=false", "study.storage=studies.db", "trials_dir=trials"])
        tune_cli.main.__wrapped__(cfg)
    assert seen == [10, 11, 12]


def test_a_resumed_study_draws_new_trials(tmp_path):
    """Reopening a study (a resumed tnd-tune) must not propose its first trials again."""
    settings = StudySettings(name="s", storage=str(tmp_path / "s.db"), n_startup_trials=10)
    space = SearchSpace.from_dict({k: SPACE[k] for k in ("train.lr", "graph")})

    def first_draws(study, n):
        draws = []
        for _ in range(n):
            trial = study.ask()
            draws.append(space.sample(trial))
            study.tell(trial, 0.5)
        return draws

    started = first_draws(open_study(settings), 2)
    resumed = first_draws(open_study(settings), 2)
    assert all(r != s for r in resumed for s in started)


def test_trials_that_fail_now_and_then_do_not_stop_the_study_and_a_broken_space_does(tmp_path):
    """Failed trials (a shape that misses the budget) are not counted and the study goes on to
    n_trials finished; failures in a row stop it with one line, and nothing is written."""
    from tnd.tuning import run_study

    space = SearchSpace.from_dict({"train.lr": SPACE["train.lr"]})
    calls = []

    def sometimes_fails(overrides, number, report):
        calls.append(number)
        if number % 3 == 1:
            raise TuneError("no width lands within the budget")
        return 0.5, {}

    settings = StudySettings(name="s", storage=str(tmp_path / "s.db"), n_trials=12, max_failures=3, pruner="none")
    study = run_study(open_study(settings), settings, space, sometimes_fails, log=lambda line: None)
    assert len(finished_trials(study)) == 12 and len(calls) > 12 + 3  # more failures in all than the limit

    broken = StudySettings(name="b", storage=str(tmp_path / "s.db"), n_trials=12, max_failures=3, pruner="none")

    def always_fails(overrides, number, report):
        raise TuneError("broken")

    with pytest.raises(TuneError, match="3 trials in a row failed") as info:
        run_study(open_study(broken), broken, space, always_fails, log=lambda line: None)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("field, value, match", [
    ("pruner", "asha", "study.pruner must be one of"),
    ("min_resource", 0, "study.min_resource"),
    ("reduction_factor", 1, "study.reduction_factor"),
])
def test_bad_pruner_settings_are_one_readable_error(field, value, match):
    with pytest.raises(TuneError, match=match):
        StudySettings(name="s", storage="unused.db", **{field: value})


def _tune(tmp_path, data_root, monkeypatch, n_trials: int, model: str = "rnn") -> int:  # noqa: F811
    trial = [o for o in TINY if not o.startswith("experiment=")] + [f"data.root={data_root}", "param_budget=null"]
    argv = [
        f"model={model}", "trial.scale=smoke", "trial.overrides=[" + ",".join(f'"{o}"' for o in trial) + "]",
        f"study.n_trials={n_trials}", "study.n_startup_trials=1", "study.pruner=none", f"study.storage={tmp_path}/studies.db",
        "study.heartbeat_seconds=1", "study.grace_seconds=1", f"trials_dir={tmp_path}/trials",
        f"results_dir={tmp_path}/results", f"conf_dir={tmp_path}/conf", f"hydra.run.dir={tmp_path}/log",
    ]
    return call_main(tune_cli.main, argv, monkeypatch)


@pytest.mark.slow
def test_tiny_study_runs_resumes_and_writes_a_config_that_trains(tmp_path, data_root, monkeypatch):  # noqa: F811
    assert _tune(tmp_path, data_root, monkeypatch, n_trials=1) == 0
    first = sorted(p.name for p in (tmp_path / "trials").iterdir())
    assert first == ["trial_000"]

    # a worker killed mid-trial leaves a RUNNING trial whose heartbeat stops
    settings = StudySettings(name="pong_table-rnn-full_length", storage=str(tmp_path / "studies.db"),
                             heartbeat_seconds=1, grace_seconds=1)
    study = open_study(settings)
    orphan = study.ask()
    study._storage.record_heartbeat(orphan._trial_id)
    time.sleep(2.5)

    assert _tune(tmp_path, data_root, monkeypatch, n_trials=3) == 0  # resumes: two more finished trials
    states = [t.state for t in open_study(settings).get_trials(deepcopy=False)]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    assert states.count(optuna.trial.TrialState.FAIL) == 1  # the orphan, failed and not counted
    summary = json.loads((tmp_path / "results" / "rnn.json").read_text())
    assert summary["finished"] == 3 and summary["trials"]["fail"] == 1
    assert (tmp_path / "results" / "rnn_trials.csv").read_text().count("\n") == 5  # header + 4 trials

    tuned = yaml.safe_load((tmp_path / "conf" / "tuned" / "rnn.yaml").read_text())
    assert tuned["train"]["lr"] == pytest.approx(summary["best_params"]["train.lr"])
    overrides = [f"++train.lr={tuned['train']['lr']}", f"++train.weight_decay={tuned['train']['weight_decay']}",
                 f"++model.options.encoder_features={tuned['model']['options']['encoder_features']}"]
    argv = [*TINY, "model=rnn", f"data.root={data_root}", *overrides, f"hydra.run.dir={tmp_path}/train"]
    assert call_main(train_cli.main, argv, monkeypatch) == 0
    assert (tmp_path / "train" / "summary.json").exists()


def test_the_committed_tuned_configs_compose_for_every_model():
    """conf/tuned/<model>.yaml (the table's defaults) compose into a valid config."""
    from hydra import compose, initialize_config_dir

    from tnd.models import model_names

    with initialize_config_dir(config_dir=tune_cli.CONF_DIR, version_base="1.3"):
        for name in model_names():
            cfg = compose(config_name="tnd_train", overrides=["experiment=pong_table", f"model={name}"])
            assert cfg.model.name == name


@pytest.mark.slow
def test_a_models_own_topology_and_the_command_line_graph(tmp_path, data_root, monkeypatch):  # noqa: F811
    """A tuned ``model.options.topology`` replaces the graph group, unless graph= is on the command line."""
    from train_helpers import compose_cfg

    from tnd.app.experiment import model_options

    cfg = compose_cfg("tnd_train", ["model=tnd", "tuned=none", "graph=layered_ncp",
                                    "++model.options.topology=ring", "++model.options.topology_options={k: 2}"])
    options = model_options(train_cli.to_object(cfg))
    assert options["topology"] == "ring" and options["topology_options"] == {"k": 2}

    argv = [*TINY, "model=tnd", "tuned=none", "++model.options.topology=ring", "graph=fully_connected",
            f"data.root={data_root}", f"hydra.run.dir={tmp_path}/run"]
    assert call_main(train_cli.main, argv, monkeypatch) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["graph"] == "fully_connected"


def test_a_searched_topology_is_written_as_the_models_own(tmp_path, monkeypatch):
    """tuned files cannot select a config group: graph=<winner> becomes model.options.topology."""
    from omegaconf import OmegaConf
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    space = SearchSpace.from_dict({k: SPACE[k] for k in ("train.lr", "graph")})
    study = optuna.create_study(direction="maximize", study_name="pong_table-tnd")
    dists = {"train.lr": FloatDistribution(1e-3, 1e-2, log=True), "graph": CategoricalDistribution(["ring", "small_world"])}
    for value, graph in ((0.4, "ring"), (0.7, "small_world")):
        study.add_trial(optuna.trial.create_trial(params={"train.lr": 0.004, "graph": graph}, distributions=dists,
                                                  value=value, user_attrs={"catches_per_round": 1.0}))
    settings = StudySettings(name="pong_table-tnd", storage=str(tmp_path / "unused.db"), n_trials=2)
    cfg = OmegaConf.create({"model": {"name": "tnd"}, "trial": {"scale": "tune"},
                            "conf_dir": str(tmp_path / "conf"), "results_dir": str(tmp_path / "results")})
    monkeypatch.setattr(tune_cli, "absolute", lambda path: path)
    summary = tune_cli.write_results(cfg, study, settings, space)
    assert summary["best_value"] == 0.7 and summary["finished"] == 2
    tuned = yaml.safe_load((tmp_path / "conf" / "tuned" / "tnd.yaml").read_text())
    assert tuned["model"]["options"]["topology"] == "small_world"
    assert tuned["model"]["options"]["topology_options"] == {"k": 4, "p": 0.1}  # conf/graph/small_world.yaml
    assert "graph" not in tuned
    assert "pong_table-tnd" in tune_cli.studies_markdown(tmp_path / "results")


WORKER = """
import sys, time
from tnd.tuning import SearchSpace, StudySettings, open_study, run_study
settings = StudySettings(name="shared", storage=sys.argv[1], n_trials=6, n_startup_trials=2)
space = SearchSpace.from_dict({"train.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}})
def run_trial(overrides, number, report):
    time.sleep(0.3)  # a trial takes a while: the other worker runs meanwhile
    return float(overrides[0].partition("=")[2]), {}
run_study(open_study(settings, worker=int(sys.argv[2])), settings, space, run_trial, log=lambda line: None)
"""


def test_two_workers_share_one_study(tmp_path):
    """`tnd-tune -m worker=0,1`: two processes start together on one storage, split the trials,
    propose different first trials, and the winner comes from the first n_trials to finish."""
    storage = str(tmp_path / "studies.db")
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, storage, str(k)], stderr=subprocess.PIPE, text=True)
               for k in (0, 1)]
    for proc in workers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    settings = StudySettings(name="shared", storage=storage, n_trials=6, n_startup_trials=2)
    study = open_study(settings)
    finished = finished_trials(study)
    assert 6 <= len(finished) <= 7  # a trial still running when the 6th finished may finish too
    assert len({t.params["train.lr"] for t in finished}) == len(finished)  # no trial proposed twice
    summary = study_summary(study, settings)
    assert summary["finished"] == 6 and summary["finished_not_counted"] == len(finished) - 6
    counted = {t.number for t in counted_trials(study, 6)}
    assert summary["best_trial"] in counted
