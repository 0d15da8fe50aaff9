"""tnd-table --robustness / --memory / --validation: a tiny finished sweep measured again, no retraining."""

import csv
import json

import pytest
from train_helpers import data_root, train_tiny  # noqa: F401  (fixture)

from experiments import table as driver
from tnd.evaluation import robustness as rb
from tnd.evaluation.robustness import RobustnessError, load_perturbations

SETTINGS = load_perturbations(driver.Path(driver.__file__).parents[1] / "conf" / "table" / "robustness.yaml")


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory, data_root):  # noqa: F811
    """Two seeds of the vanilla RNN at the tiny budget: a finished sweep folder."""
    root = tmp_path_factory.mktemp("sweep")
    for seed in (0, 1):
        train_tiny(root / f"rnn_seed{seed}", data_root, "model=rnn", f"seed={seed}", "eval.num_games=4")
    return root


def test_the_configured_columns_are_the_issue_s_perturbations():
    names = [p.name for p in SETTINGS.perturbations]
    assert names[0] == "none" and len(names) == 9
    assert SETTINGS.occlusion_steps == (0, 1, 2, 4, 8, 16)


@pytest.mark.slow
def test_robustness_table_of_a_tiny_sweep(tiny_sweep, tmp_path, capsys, monkeypatch):
    results = tmp_path / "tables"
    argv = ["--robustness", "--perturbations", "noise_0.1,delay_1", "--sweep-dir", str(tiny_sweep),
            "--results-dir", str(results), "--name", "tiny"]
    assert driver.main(argv) == 0
    with open(results / "tiny-robustness.csv") as f:
        rows = list(csv.DictReader(f))
    cells = {(r["column"], r["metric"]): r for r in rows}
    assert [c for c, m in cells if m == "catch_rate"] == ["none", "noise_0.1", "delay_1"]  # unperturbed first
    assert all(r["model"] == "rnn" and r["n_seeds"] == "2" for r in rows)
    summaries = [json.loads((tiny_sweep / f"rnn_seed{s}" / "summary.json").read_text()) for s in (0, 1)]
    assert float(cells[("none", "catch_rate")]["mean"]) == pytest.approx(
        sum(s["catch_rate"] for s in summaries) / 2)  # the unperturbed column repeats the run's own evaluation
    assert {"relative_step", "lyapunov"} <= {r["metric"] for r in rows if r["column"] == "smoothness"}
    assert (results / "tiny-robustness.md").exists() and (results / "tiny-robustness.png").exists()

    # measured once: a second call renders from the runs' robustness.json without playing a game
    monkeypatch.setattr("tnd.app.robustness.evaluate", lambda *a, **k: pytest.fail("evaluated again"))
    assert driver.main(argv) == 0


@pytest.mark.slow
def test_memory_curve_of_a_tiny_sweep(tiny_sweep, tmp_path):
    results = tmp_path / "tables"
    assert driver.main(["--memory", "--sweep-dir", str(tiny_sweep), "--results-dir", str(results), "--name", "t"]) == 0
    with open(results / "t-memory.csv") as f:
        columns = [r["label"] for r in csv.DictReader(f) if r["metric"] == "catch_rate"]
    assert columns == [f"k = {k}" for k in (0, 1, 2, 4, 8, 16)]



@pytest.mark.slow
def test_validation_table_plays_the_runs_validation_games(tiny_sweep, tmp_path, monkeypatch):
    """--validation: each run's checkpoint plays its eval.validation_seed games (never its test games), one column."""
    import tnd.app.robustness as measuring

    played = []
    original = measuring.evaluate

    def recording(*args, **kwargs):
        played.append(kwargs["seed"])
        return original(*args, **kwargs)

    monkeypatch.setattr(measuring, "evaluate", recording)
    results = tmp_path / "tables"
    assert driver.main(["--validation", "--sweep-dir", str(tiny_sweep), "--results-dir", str(results),
                        "--name", "t"]) == 0
    specs = [json.loads((tiny_sweep / f"rnn_seed{s}" / "run.json").read_text())["spec"] for s in (0, 1)]
    assert played == [spec["eval"]["validation_seed"] for spec in specs]
    assert not set(played) & {spec["eval"]["seed"] for spec in specs}
    with open(results / "t-validation.csv") as f:
        assert {r["column"] for r in csv.DictReader(f)} == {"none"}
    assert "validation games" in (results / "t-validation.md").read_text()

def test_unknown_perturbation_is_one_line_with_the_closest_name(tmp_path, capsys):
    with pytest.raises(RobustnessError, match="did you mean 'noise_0.03'") as info:
        SETTINGS.select(["noise_0.3"])
    assert "\n" not in str(info.value)
    rc = driver.main(["--robustness", "--perturbations", "sticky", "--sweep-dir", str(tmp_path), "--results-dir",
                      str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "Unknown perturbation 'sticky'" in err and "Traceback" not in err


def test_out_of_range_amounts_and_malformed_settings_are_one_line(tmp_path):
    config = rb.Perturbation("x", "x", scale={"nosuch": 2.0})
    from tnd.envs.pong import PongConfig, PongConfigError

    with pytest.raises(RobustnessError, match="nosuch"):
        config.options(PongConfig())
    with pytest.raises(PongConfigError, match="obs_noise"):
        PongConfig(**rb.Perturbation("n", "n", set={"obs_noise": -0.5}).options(PongConfig()))
    bad = tmp_path / "r.yaml"
    bad.write_text("perturbations:\n  noise: {set: {obs_noise: 0.1}}\n")
    with pytest.raises(RobustnessError, match="first perturbation must be 'none"):
        load_perturbations(bad)
    bad.write_text("perturbations:\n  none: {}\n  x: {sett: {}}\n")
    with pytest.raises(RobustnessError, match="unknown field"):
        load_perturbations(bad)


def test_no_finished_run_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert driver.main(["--memory", "--sweep-dir", str(tmp_path / "empty"), "--results-dir", str(tmp_path)]) == 2
    assert "No finished runs" in capsys.readouterr().err


def test_a_measurement_stored_as_not_finite_is_shown_as_such():
    """A Transformer's exponent is -inf, stored as JSON null: the table shows "–", it does not fail."""
    runs = [rb.RunMeasurement("transformer", s, f"r{s}", {"none": {"catch_rate": 1.0, "catches_per_round": 9.0}},
                              {"relative_step": 0.3, "lyapunov": None}) for s in (0, 1)]
    table = rb.robustness_table(runs, SETTINGS.select([]), caption="# t")
    assert table.rows[0].smoothness["lyapunov"].n == 0
    assert "| Transformer | 0.300 ± 0.000 | – |" in rb.render_markdown(table)


def test_a_sweep_with_several_rows_per_model_is_measured_row_by_row():
    """DAgger beside plain BC (or an ablation's variants): one row per variant, never one run per model and seed."""
    from experiments.robustness import finished_runs
    from tnd.evaluation.table import RunRecord

    keys = ("model", "dagger.rounds")
    records = [RunRecord(model, seed, "ok", driver.Path(f"{model}-{rounds}-{seed}"), overrides=(f"dagger.rounds={rounds}",))
               for model in ("tnd", "lstm") for rounds in (3, 0) for seed in (0, 1)]
    runs = finished_runs(records, keys)
    assert len(runs) == 8 and runs[driver.Path("tnd-0-1")] == "TND · rounds=0" and runs[driver.Path("lstm-3-0")] == "LSTM · rounds=3"
    assert set(finished_runs(records[:2] + records[4:6], keys).values()) == {None}  # one row per model: its name
    measurements = [rb.RunMeasurement(r.model, r.seed, str(r.path), {"none": {"catch_rate": float(r.overrides[0][-1]) / 4,
                                                                              "catches_per_round": 1.0}}, row=row)
                    for r in records for row in [runs[r.path]]]
    table = rb.robustness_table(measurements, SETTINGS.select([]), caption="# t")
    assert [row.label for row in table.rows] == ["TND · rounds=3", "TND · rounds=0", "LSTM · rounds=3", "LSTM · rounds=0"]  # the paper's model order
    assert [row.cells[("none", "catch_rate")].mean for row in table.rows] == [0.75, 0.0, 0.75, 0.0]
    assert "| TND · rounds=0 | 2 | 0.000 ± 0.000 |" in rb.render_markdown(table)


def test_smoothness_needs_an_env_that_records_its_games():
    """Smoothness reads the env's recorded games (`EnvDefinition.record_model`): Pong records them, Atari does not."""
    from types import SimpleNamespace

    from tnd.app.robustness import _smoothness
    from tnd.envs import get_env

    assert get_env("pong").record_model is not None
    spec = SimpleNamespace(eval=SimpleNamespace(seed=1))
    with pytest.raises(RobustnessError, match="env 'atari_pong' does not record its games.*Leave out --smoothness"):
        _smoothness(None, spec, get_env("atari_pong"), None, {}, SETTINGS)


@pytest.mark.slow
def test_choose_between_two_sweeps_keeps_the_one_better_on_validation_games(tiny_sweep, tmp_path, monkeypatch):
    """--choose-between A,B: both sweeps' runs play their validation games (never their test games), each row keeps
    the better sweep (a tie: the first), and the table shows the kept sweep's test figures."""
    import shutil

    import tnd.app.robustness as measuring

    first, second = tmp_path / "default", tmp_path / "untuned"
    shutil.copytree(tiny_sweep, first)
    shutil.copytree(tiny_sweep, second)
    for cache in [*first.rglob("robustness.json"), *second.rglob("robustness.json")]:
        cache.unlink()  # measured by the tests before: start unmeasured
    played = []
    original = measuring.evaluate
    monkeypatch.setattr(measuring, "evaluate", lambda *a, **k: played.append(k["seed"]) or original(*a, **k))
    results = tmp_path / "tables"
    argv = ["--choose-between", f"{first},{second}", "--results-dir", str(results), "--name", "t"]
    assert driver.main(argv) == 0
    specs = [json.loads((tiny_sweep / f"rnn_seed{s}" / "run.json").read_text())["spec"] for s in (0, 1)]
    assert sorted(played) == sorted(2 * [spec["eval"]["validation_seed"] for spec in specs])
    assert "| Vanilla RNN |" in (results / "t-chosen.md").read_text() and "**default** |" in (
        results / "t-chosen.md").read_text()

    for seed in (0, 1):  # the second sweep: better on its validation games, and its own test figures
        cache = second / f"rnn_seed{seed}" / "robustness.json"
        stored = json.loads(cache.read_text())
        for entry in stored["entries"].values():
            entry["catch_rate"] += 0.5
        cache.write_text(json.dumps(stored))
        summary = second / f"rnn_seed{seed}" / "summary.json"
        summary.write_text(json.dumps({**json.loads(summary.read_text()), "catch_rate": 0.25}))
    assert driver.main(argv) == 0
    assert "**untuned** |" in (results / "t-chosen.md").read_text()
    with open(results / "t-chosen.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["catch_rate_mean"]) == pytest.approx(0.25)
    assert len(played) == 4  # measured once: the second call read the runs' robustness.json


def test_choose_between_a_folder_that_is_not_there_is_one_line(tmp_path, capsys):
    assert driver.main(["--choose-between", f"{tmp_path},{tmp_path / 'nope'}"]) == 2
    assert capsys.readouterr().err.strip() == f"tnd-table: error: --choose-between: no sweep folder {tmp_path / 'nope'}."
