"""The Pong table: t quantiles, aggregation of synthetic Hydra run folders, outputs, driver."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import types
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from experiments import multirun
from experiments import table as driver
from tnd.app import sweep as sweeps
from tnd.run_folder import override_key
from tnd.evaluation import table as tbl

T975 = {1: 12.706, 2: 4.303, 4: 2.776, 30: 2.042}  # printed tables of t_{0.975, df}


def _run_folder(root: Path, model: str, seed: int, *, summary: dict | None = None, error: dict | None = None,
                name: str | None = None) -> Path:
    """A folder laid out as Hydra writes a multirun job, plus the trainer's summary/error."""
    run = root / (name or f"model={model},seed={seed}")
    (run / ".hydra").mkdir(parents=True)
    overrides = [f"model={model}", f"seed={seed}", "experiment=pong_table"]
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model": {"name": model}, "seed": seed}))
    if summary is not None:
        (run / "summary.json").write_text(json.dumps({"model": model, "seed": seed, **summary}))
    if error is not None:
        (run / "error.json").write_text(json.dumps(error))
    return run


def _summary(catch_rate, catches_per_round, score, num_params=1000, train_seconds=10.0):
    return dict(env="pong", catch_rate=catch_rate, catches_per_round=catches_per_round, score=score,
                points_won=0.0, points_lost=0.0, num_params=num_params, train_seconds=train_seconds,
                eval_seconds=1.0, config_hash="abc")


@pytest.fixture
def sweep(tmp_path) -> Path:
    """tnd: 3 ok seeds; lstm: seed 0 ok, seed 1 failed, seed 2 missing; cfc: seed 0 unfinished, 1-2 missing."""
    root = tmp_path / "multirun" / "pong_table" / "default"
    for seed, (cr, cpr, score, secs) in enumerate([(0.5, 1.0, -2.0, 10.0), (0.6, 2.0, 0.0, 20.0), (0.7, 3.0, 5.0, 60.0)]):
        _run_folder(root, "tnd", seed, summary=_summary(cr, cpr, score, 1000, secs))
    _run_folder(root, "lstm", 0, summary=_summary(0.9, 4.5, 1.0, 1100, 5.0))
    _run_folder(root, "lstm", 1, error={"error": "loss is NaN at step 7"})  # no model/seed: from .hydra
    _run_folder(root, "cfc", 0)  # killed: .hydra only
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("df", sorted(T975))
def test_t_quantile_matches_printed_tables(df):
    assert tbl.student_t_quantile(0.975, df) == pytest.approx(T975[df], abs=1e-3)
    assert tbl.student_t_quantile(0.025, df) == pytest.approx(-T975[df], abs=1e-3)


def test_t_quantile_other_levels_and_large_df():
    assert tbl.student_t_quantile(0.995, 10) == pytest.approx(3.169, abs=1e-3)
    assert tbl.student_t_quantile(0.95, 3) == pytest.approx(2.353, abs=1e-3)
    assert tbl.student_t_quantile(0.975, 10_000) == pytest.approx(1.960, abs=1e-3)  # -> normal
    with pytest.raises(ValueError):
        tbl.student_t_quantile(1.0, 3)


def test_plotted_intervals_stay_within_each_metrics_range():
    """A catch rate's interval never passes 1 on the plot, a train time never passes 0."""
    stats = {"catch_rate": tbl.student_t_interval([0.99, 1.0, 0.95]),
             "train_seconds": tbl.student_t_interval([1.0, 30.0, 2.0]),
             "score": tbl.student_t_interval([-5.0, 5.0, 0.0])}
    assert stats["catch_rate"].high > 1.0 and stats["train_seconds"].low < 0.0  # the statistic itself
    row = types.SimpleNamespace(stats=stats)
    for metric, (lo, hi) in {"catch_rate": (0.0, 1.0), "train_seconds": (0.0, math.inf),
                             "score": (-math.inf, math.inf)}.items():
        means, errs = tbl.error_bars([row], metric)
        assert (errs >= 0).all()
        assert means[0] - errs[0, 0] >= lo and means[0] + errs[1, 0] <= hi
    _, score = tbl.error_bars([row], "score")
    assert score[0, 0] == pytest.approx(stats["score"].half_width) == pytest.approx(score[1, 0])  # unbounded: symmetric


def test_interval_by_hand():
    iv = tbl.student_t_interval([1.0, 2.0, 3.0])
    assert (iv.mean, iv.n) == (2.0, 3)
    assert iv.half_width == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)  # s = 1
    one = tbl.student_t_interval([5.0])
    assert one.mean == 5.0 and math.isnan(one.half_width) and one.n == 1
    none = tbl.student_t_interval([math.nan])
    assert none.n == 0 and math.isnan(none.mean)


# --------------------------------------------------------------------------- run folders


def test_collect_runs_reads_status_and_identity(sweep):
    records = {(r.model, r.seed): r for r in tbl.collect_runs(sweep)}
    assert set(records) == {("tnd", 0), ("tnd", 1), ("tnd", 2), ("lstm", 0), ("lstm", 1), ("cfc", 0)}
    assert records["tnd", 1].status == "ok" and records["tnd", 1].metrics["catches_per_round"] == 2.0
    assert records["lstm", 1].status == "failed" and records["lstm", 1].error == "loss is NaN at step 7"
    assert records["cfc", 0].status == "unfinished"
    with pytest.raises(tbl.TableError, match="does not exist"):
        tbl.collect_runs(sweep / "nope")


def test_aggregate_means_intervals_and_reported_problems(sweep):
    table = tbl.aggregate(tbl.collect_runs(sweep), expected_models=["tnd", "lstm", "cfc"], expected_seeds=[0, 1, 2])
    rows = {r.model: r for r in table.rows}
    assert [r.model for r in table.rows] == ["tnd", "lstm", "cfc"]

    tnd = rows["tnd"]
    t2 = 4.303  # t_{0.975, 2}
    assert tnd.n_seeds == 3 and tnd.problems == ()
    assert tnd.stats["catches_per_round"].mean == pytest.approx(2.0)
    assert tnd.stats["catches_per_round"].half_width == pytest.approx(t2 * 1.0 / math.sqrt(3), abs=1e-3)
    assert tnd.stats["catch_rate"].mean == pytest.approx(0.6)
    assert tnd.stats["catch_rate"].half_width == pytest.approx(t2 * 0.1 / math.sqrt(3), abs=1e-4)
    # score -2, 0, 5: mean 1, s = sqrt(((-3)^2 + 1 + 16) / 2) = sqrt(13)
    assert tnd.stats["score"].mean == pytest.approx(1.0)
    assert tnd.stats["score"].half_width == pytest.approx(t2 * math.sqrt(13) / math.sqrt(3), abs=1e-3)
    assert tnd.stats["num_params"].mean == 1000 and tnd.stats["num_params"].half_width == 0
    assert tnd.stats["train_seconds"].mean == pytest.approx(30.0)
    assert tnd.paper_value == 17.47

    lstm = rows["lstm"]
    assert lstm.seeds == (0,) and math.isnan(lstm.stats["catch_rate"].half_width)
    assert [r.seed for r in lstm.failed] == [1] and [r.seed for r in lstm.missing] == [2]
    assert lstm.paper_value is None

    cfc = rows["cfc"]
    assert cfc.n_seeds == 0 and math.isnan(cfc.stats["catch_rate"].mean)
    assert [r.seed for r in cfc.unfinished] == [0] and [r.seed for r in cfc.missing] == [1, 2]
    assert table.n_problems == 5 and table.envs == ("pong",)


def test_aggregate_defaults_expect_every_seed_seen_and_keep_unexpected_models(sweep):
    table = tbl.aggregate(tbl.collect_runs(sweep), expected_models=["tnd"])
    rows = {r.model: r for r in table.rows}
    assert [r.model for r in table.rows][0] == "tnd" and set(rows) == {"tnd", "lstm", "cfc"}
    table = tbl.aggregate(tbl.collect_runs(sweep))
    rows = {r.model: r for r in table.rows}
    assert [r.seed for r in rows["lstm"].missing] == [2]  # tnd ran seed 2, so lstm lacks it


def test_duplicate_folders_count_once(sweep):
    _run_folder(sweep, "tnd", 0, error={"error": "old failure"}, name="old/model=tnd,seed=0")
    table = tbl.aggregate(tbl.collect_runs(sweep), expected_models=["tnd"], expected_seeds=[0, 1, 2])
    assert table.rows[0].n_seeds == 3 and table.rows[0].failed == ()
    assert [(r.model, r.seed, r.status) for r in table.duplicates] == [("tnd", 0, "failed")]


# --------------------------------------------------------------------------- outputs


def test_markdown_csv_png_report_failed_and_missing_runs(sweep, tmp_path):
    (sweep / "expert_summary.json").write_text(json.dumps(_summary(0.97, 6.4, 14.0)))
    table = tbl.aggregate(tbl.collect_runs(sweep), expected_models=["tnd", "lstm", "cfc"], expected_seeds=[0, 1, 2],
                          expert=tbl.load_expert_summary(sweep))
    md = tbl.write_markdown(table, tmp_path / "out" / "t.md").read_text()
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "2.00 ± 2.48" in lines["TND"] and "0.600 ± 0.248" in lines["TND"] and "17.47" in lines["TND"]
    assert "3 / 3" in lines["TND"]
    assert "n/a" in lines["LSTM"] and "not published" in lines["LSTM"] and "1 / 3" in lines["LSTM"]
    assert "failed: seed 1" in lines["LSTM"] and "missing: seed 2" in lines["LSTM"]
    assert "unfinished: seed 0" in lines["CfC"] and "missing: seed 1, 2" in lines["CfC"] and "6.14" in lines["CfC"]
    assert "0.970" in lines["Expert (reference)"]
    assert "loss is NaN at step 7" in md and "arXiv 2606.21295" in md and "Runs not counted (5)" in md

    with tbl.write_csv(table, tmp_path / "out" / "t.csv").open() as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert float(rows["tnd"]["catches_per_round_mean"]) == pytest.approx(2.0)
    assert float(rows["tnd"]["catches_per_round_ci95"]) == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)
    assert float(rows["tnd"]["catches_per_round_low"]) == pytest.approx(2.0 - 4.303 / math.sqrt(3), abs=1e-3)
    assert float(rows["tnd"]["paper_catches_per_round"]) == 17.47
    assert rows["lstm"]["catch_rate_ci95"] == "" and rows["lstm"]["paper_catches_per_round"] == ""
    assert (rows["lstm"]["n_failed"], rows["lstm"]["failed_seeds"]) == ("1", "1")
    assert (rows["lstm"]["n_missing"], rows["lstm"]["missing_seeds"]) == ("1", "2")
    assert (rows["cfc"]["n_seeds"], rows["cfc"]["n_unfinished"], rows["cfc"]["missing_seeds"]) == ("0", "1", "1 2")
    assert rows["expert"]["source"] == "expert" and float(rows["expert"]["catch_rate_mean"]) == 0.97

    png = tbl.plot_table(table, tmp_path / "out" / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- driver


def test_aggregate_only_writes_three_files(sweep, tmp_path, capsys):
    results = tmp_path / "results"
    rc = driver.main(["--aggregate-only", "--sweep-dir", str(sweep), "--results-dir", str(results),
                      "--models", "tnd,lstm,cfc", "--seeds", "0,1,2"])
    assert rc == 0
    for ext in ("md", "csv", "png"):
        assert (results / f"pong_table-pong-default.{ext}").stat().st_size > 0
    out = capsys.readouterr().out
    assert "| TND | 3 / 3 |" in out and "missing: seed 1, 2" in out


def test_tables_go_to_the_users_outputs_unless_published(sweep, tmp_path, monkeypatch):
    """A user's table never overwrites the repository's committed results/ (git stays clean)."""
    monkeypatch.chdir(tmp_path)
    args = ["--aggregate-only", "--sweep-dir", str(sweep), "--models", "tnd,lstm,cfc", "--seeds", "0,1,2"]
    assert driver.main(args) == 0
    assert sorted(p.name for p in (tmp_path / "outputs" / "tables").iterdir()) == [
        "pong_table-pong-default.csv", "pong_table-pong-default.md", "pong_table-pong-default.png"]
    assert not (tmp_path / "results").exists()
    assert driver.main([*args, "--publish", "env=atari_pong", "scale=smoke"]) == 0
    assert (tmp_path / "results" / "pong_table-atari_pong-smoke.md").exists()
    assert sweeps.default_sweep_dir("pong_table", "atari_pong", "smoke") == Path("multirun/pong_table/atari_pong/smoke")


def test_aggregate_only_missing_folder_is_one_error(tmp_path, capsys):
    assert driver.main(["--aggregate-only", "--sweep-dir", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_plan_jobs_follows_hydra_precedence():
    jobs = sweeps.plan_jobs({"model": "tnd,lstm", "seed": "0,1,2"}, "pong_table", ["seed=5", "train.steps=3"])
    assert [sweeps.job_id(j) for j in jobs] == [("tnd", 5), ("lstm", 5)]
    assert all("train.steps=3" in j and "experiment=pong_table" in j for j in jobs)
    with pytest.raises(sweeps.SweepError, match="seed"):
        sweeps.plan_jobs({"model": "tnd,lstm"}, "pong_table", [])
    with pytest.raises(sweeps.SweepError, match="train.steps also varies"):
        sweeps.plan_jobs({"model": "tnd", "seed": "0"}, "pong_table", ["train.steps=1,2"])
    groups = sweeps.group_jobs([j for j in sweeps.plan_jobs({"model": "a,b", "seed": "0,1"}, "x", [])
                                 if sweeps.job_id(j) != ("a", 0)])
    assert sorted(g[-2:] for g in groups) == [["model=a", "seed=1"], ["model=b", "seed=0,1"]]


FAKE_TRAINER = '''
import json, os
import hydra
from hydra.core.hydra_config import HydraConfig

@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    out = HydraConfig.get().runtime.output_dir
    with open(os.path.join(out, "launched.txt"), "a") as f:
        f.write("x")
    if f"{cfg.model.name}:{cfg.seed}" in os.environ.get("FAKE_FAIL", "").split():
        with open(os.path.join(out, "error.json"), "w") as f:
            json.dump({"error": "planned failure"}, f)
        raise RuntimeError("planned failure")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"model": cfg.model.name, "seed": cfg.seed, "env": "pong", "catch_rate": 0.5,
                   "catches_per_round": 1.0 + cfg.seed, "score": 0.0, "num_params": 10,
                   "train_seconds": 1.0}, f)

if __name__ == "__main__":
    main()
'''


@pytest.fixture
def fake_trainer(tmp_path) -> str:
    """A Hydra app with the trainer's interface (model group, seed, experiment=pong_table)."""
    app = tmp_path / "app"
    for sub in ("conf/model", "conf/experiment"):
        (app / sub).mkdir(parents=True)
    (app / "train.py").write_text(FAKE_TRAINER)
    (app / "conf" / "config.yaml").write_text("defaults:\n  - model: a\n  - _self_\n  - experiment: null\nseed: 0\n")
    for name in ("a", "b"):
        (app / "conf" / "model" / f"{name}.yaml").write_text(f"name: {name}\n")
    (app / "conf" / "experiment" / "pong_table.yaml").write_text(textwrap.dedent("""\
        # @package _global_
        hydra:
          sweeper:
            params:
              model: a,b
              seed: 0,1
        """))
    return f"{sys.executable} {app / 'train.py'}"


def test_sweep_resumes_and_reports_failures(fake_trainer, tmp_path, monkeypatch, capsys):
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    args = ["--train-command", fake_trainer, "--sweep-dir", str(sweep_dir), "--results-dir", str(results),
            "--no-stack-seeds", "--jobs", "1"]
    launches = lambda: {p.parent.name: len(p.read_text()) for p in sweep_dir.glob("*/launched.txt")}  # noqa: E731

    monkeypatch.setenv("FAKE_FAIL", "b:1")
    assert driver.main(args) == 1  # a failed run: table written, status says so
    assert launches() == {"model=a,seed=0": 1, "model=a,seed=1": 1, "model=b,seed=0": 1, "model=b,seed=1": 1}
    assert "failed: seed 1" in (results / "pong_table-default.md").read_text()
    assert json.loads((sweep_dir / "sweep.json").read_text())["models"] == ["a", "b"]

    monkeypatch.delenv("FAKE_FAIL")
    killed_summary = sweep_dir / "model=a,seed=1" / "summary.json"
    killed_summary.unlink()  # as if killed before the summary: unfinished
    assert driver.main(args) == 0  # only the failed and the unfinished job run again
    assert launches() == {"model=a,seed=0": 1, "model=a,seed=1": 2, "model=b,seed=0": 1, "model=b,seed=1": 2}
    assert driver.main(args) == 0 and launches()["model=a,seed=0"] == 1  # nothing left to run
    capsys.readouterr()

    assert driver.main([*args, "+extra=1"]) == 2  # finished folders made with other overrides: refused
    assert "Pass another --sweep-dir" in capsys.readouterr().err


def test_sweep_refuses_a_finished_run_whose_conf_changed(tmp_path):
    """A finished folder whose job has the same overrides but composes to another configuration
    now (conf/ edited since it ran) is refused with one line, never counted as done; one whose
    hash matches is skipped, not relaunched."""
    from tnd.app.experiment import config_hash
    from tnd.app.spec import load_spec

    jobs, keys = sweeps.plan_sweep(["model=lstm", "seed=0", "scale=smoke"])
    sweep_dir = tmp_path / "sweep"
    folder = _run_folder(sweep_dir, "lstm", 0, summary=_summary(0.5, 1.0, 0.0))
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(jobs[0]))
    launched = []

    def launch(group):
        launched.append(group)
        return 0

    def finished_with(digest):
        (folder / "summary.json").write_text(json.dumps({"model": "lstm", "seed": 0,
                                                         **_summary(0.5, 1.0, 0.0), "config_hash": digest}))

    finished_with(config_hash(load_spec(jobs[0])))
    sweeps.run_sweep(jobs, sweep_dir, launch=launch, keys=keys, progress=False)
    assert launched == []  # current: done
    finished_with("0123456789ab")  # what an older conf/ hashed to
    with pytest.raises(sweeps.SweepError, match="another configuration.*conf/ changed since it ran.*another --sweep-dir"):
        sweeps.run_sweep(jobs, sweep_dir, launch=launch, keys=keys, progress=False)
    assert launched == []


def test_sweep_shows_progress_and_ctrl_c_is_one_line(fake_trainer, tmp_path, monkeypatch, capsys):
    sweep_dir = tmp_path / "sweep"
    args = ["--train-command", fake_trainer, "--sweep-dir", str(sweep_dir), "--results-dir", str(tmp_path / "r"),
            "--no-stack-seeds", "--jobs", "1"]
    assert driver.main([*args, "model=a", "seed=0"]) == 0
    err = capsys.readouterr().err
    assert "[tnd-table] jobs" in err and "1/1" in err  # the progress display: jobs done / total

    def interrupted(cmd, **_):
        raise KeyboardInterrupt

    monkeypatch.setattr(multirun, "_call", interrupted)
    assert driver.main(args) == 130
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tnd-table")]
    assert lines == [f"tnd-table: interrupted; 1 run(s) finished in {sweep_dir}; run the same command again to "
                     "resume (finished runs are kept, unfinished ones continue from their last checkpoint)."]
    assert "Traceback" not in err

    # the jobs interrupted but not tnd-table (it was started with SIGINT ignored, as a background
    # job of a script is): the same line, and no relaunch of the remaining jobs
    calls = []

    def jobs_interrupted(cmd, **_):
        calls.append(cmd)
        return 130

    monkeypatch.setattr(multirun, "_call", jobs_interrupted)
    assert driver.main([*args, "model=a,b", "seed=0"]) == 130
    err = capsys.readouterr().err
    assert len(calls) == 1 and "tnd-table: interrupted; 1 run(s) finished" in err and "re-planning" not in err



def test_the_jobs_get_the_compilation_cache(tmp_path, monkeypatch):
    """tnd-table hands its jobs the trainer's compilation_cache (Hydra's launcher runs them in
    worker processes, not as the command), as an absolute path; a user's own setting stays."""
    seen = []
    monkeypatch.setattr(multirun, "_call", lambda cmd, **kwargs: seen.append(kwargs.get("env")) or 0)
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    group = sweeps.LaunchGroup(["model=a", "seed=0"], [["model=a", "seed=0"]], False, sweeps.SWEPT_KEYS)
    assert multirun.multirun(["train"], [], tmp_path, compilation_cache=".jax_cache")(group) == 0
    assert seen[-1]["JAX_COMPILATION_CACHE_DIR"] == str(Path(".jax_cache").absolute())
    assert multirun.multirun(["train"], [], tmp_path, compilation_cache=None)(group) == 0 and seen[-1] is None
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/the/users/own")
    assert multirun.multirun(["train"], [], tmp_path, compilation_cache=".jax_cache")(group) == 0 and seen[-1] is None

REPO = Path(__file__).resolve().parents[1]


def needs_files(*paths: str):
    """Skips a test when one of the repository files it runs is absent."""
    return pytest.mark.skipif(not all((REPO / p).exists() for p in paths), reason=f"needs {', '.join(paths)}")


@pytest.mark.slow
@needs_files("experiments/train.py", "conf/experiment/pong_table.yaml", "conf/scale/smoke.yaml")
def test_smoke_sweep(tmp_path, monkeypatch):
    """tnd-table end to end with the real trainer: two models, one seed, the smoke budget."""
    monkeypatch.chdir(REPO)
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    rc = driver.main(["scale=smoke", "model=tnd,lstm", "seed=0", "--sweep-dir", str(sweep_dir),
                      "--results-dir", str(results)])
    assert rc == 0
    with (results / "pong_table-pong-smoke.csv").open() as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    expert = rows.pop("expert")  # the analytic expert on the runs' own held-out games
    assert expert["source"] == "expert" and float(expert["catch_rate_mean"]) > 0.9
    assert (sweep_dir / "expert_summary.json").exists()
    assert set(rows) == {"tnd", "lstm"} and all(r["n_seeds"] == "1" for r in rows.values())
    assert (results / "pong_table-pong-smoke.md").exists() and (results / "pong_table-pong-smoke.png").exists()
    assert driver.main(["scale=smoke", "model=tnd,lstm", "seed=0", "--sweep-dir", str(sweep_dir),
                        "--results-dir", str(results)]) == 0  # resumed: nothing to rerun


# --------------------------------------------------------------------------- variants (ablations)


ABLATION_KEYS = ("model", "graph", "model.options.inner_rounds")


def _variant_folder(root: Path, seed: int, graph: str, rounds: str, *, summary: dict | None = None,
                    error: dict | None = None, model: str = "tnd") -> Path:
    """A job folder of an ablation sweep: model, graph, inner rounds and seed swept."""
    overrides = [f"model={model}", f"graph={graph}", f"model.options.inner_rounds={rounds}", f"seed={seed}",
                 "experiment=tnd_ablation"]
    run = root / ",".join(sorted(o for o in overrides if not o.startswith("experiment=")))
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model": {"name": model}, "seed": seed}))
    if summary is not None:
        (run / "summary.json").write_text(json.dumps({"model": model, "seed": seed, **summary}))
    if error is not None:
        (run / "error.json").write_text(json.dumps(error))
    return run


@pytest.fixture
def ablation(tmp_path) -> Path:
    """ring/K=1: seeds 0-1 ok (0.4, 0.6); ring/K=2: seed 0 ok, seed 1 failed; grid/K=1: seed 0 ok; grid/K=2: none."""
    root = tmp_path / "multirun" / "tnd_ablation" / "default"
    _variant_folder(root, 0, "ring", "1", summary=_summary(0.4, 1.0, -3.0))
    _variant_folder(root, 1, "ring", "1", summary=_summary(0.6, 2.0, -1.0))
    _variant_folder(root, 0, "ring", "2", summary=_summary(0.9, 5.0, 2.0))
    _variant_folder(root, 1, "ring", "2", error={"error": "loss is NaN at step 3"})
    _variant_folder(root, 0, "grid", "1", summary=_summary(0.2, 0.5, -5.0))
    return root


def test_plan_jobs_with_more_swept_keys():
    params = {"model": "tnd", "graph": "ring,grid", "model.options.inner_rounds": "1,2", "seed": "0,1"}
    keys = sweeps.swept_keys(params)
    assert keys == ("model", "graph", "model.options.inner_rounds", "seed")
    jobs = sweeps.plan_jobs(params, "tnd_ablation", ["train.steps=3"])
    assert len(jobs) == 8 and all("train.steps=3" in j for j in jobs)
    assert sweeps.job_id(jobs[0], keys) == ("tnd", "ring", "1", 0)
    # the command line narrows a swept key: the key stays an identity key (same folders as the full sweep)
    narrowed = sweeps.plan_jobs(params, "tnd_ablation", ["model.options.inner_rounds=2", "seed=1"])
    assert [sweeps.job_id(j, keys) for j in narrowed] == [("tnd", "ring", "2", 1), ("tnd", "grid", "2", 1)]
    with pytest.raises(sweeps.SweepError, match="model.options.dynamics also varies"):
        sweeps.plan_jobs(params, "tnd_ablation", ["model.options.dynamics=leaky,gated"])
    # the keys of sweep.json for the pong table: unchanged
    assert sweeps.swept_keys({"model": "a,b", "seed": "0"}) == ("model", "seed")


def _expand(group: list[str], keys) -> set[tuple]:
    """The job identities one multirun override list launches."""
    import itertools

    values = {override_key(o): o.partition("=")[2].split(",") for o in group}
    return {(*combo[:-1], int(combo[-1])) for combo in itertools.product(*(values[k] for k in keys))}


def test_group_jobs_cover_exactly_the_pending_variants():
    params = {"model": "tnd", "graph": "ring,grid,ws", "model.options.inner_rounds": "1,2", "seed": "0,1,2"}
    keys = sweeps.swept_keys(params)
    jobs = sweeps.plan_jobs(params, "tnd_ablation", [])
    assert len(sweeps.group_jobs(jobs, keys)) == 1  # the full grid: one multirun
    done = {("tnd", "ring", "1", 0), ("tnd", "ring", "1", 1), ("tnd", "grid", "2", 2), ("tnd", "ws", "1", 0)}
    pending = [j for j in jobs if sweeps.job_id(j, keys) not in done]
    groups = sweeps.group_jobs(pending, keys)
    launched = [_expand(g, keys) for g in groups]
    assert set().union(*launched) == {sweeps.job_id(j, keys) for j in pending}
    assert sum(map(len, launched)) == len(pending)  # disjoint: no job launched twice
    assert len(groups) < len(pending)
    assert all(g[0] == "experiment=tnd_ablation" for g in groups)


def test_variant_labels_name_what_differs():
    keys = ("model", "graph", "model.options.inner_rounds", "model.options.dynamics", "lr")
    variants = [("tnd", "layered_ncp", "auto", "leaky", "0.1"), ("tnd", "small_world", "1", "leaky", "0.2")]
    assert tbl.variant_labels(variants, keys) == ["layered_ncp · K=auto · lr=0.1", "small_world · K=1 · lr=0.2"]
    assert tbl.variant_labels([("tnd",), ("lstm",)], ("model",)) == ["TND", "LSTM"]
    assert tbl.variant_labels([("tnd", "ring")], ("model", "graph")) == ["TND"]  # one row: the model


def test_rows_keep_the_paper_s_model_order_whatever_order_the_sweep_launched_them_in(ablation):
    """The Atari sweep launches the slowest models first; its table still lists TND first, variants in sweep order."""
    records = tbl.collect_runs(ablation)
    launched = [("lstm", "ring", "1"), ("tnd", "grid", "2"), ("tnd", "ring", "1")]
    table = tbl.aggregate(records, keys=ABLATION_KEYS, expected_variants=launched, expected_seeds=[0, 1], paper=None)
    models = [dict(r.variant)["model"] for r in table.rows]
    assert models[-1] == "lstm" and set(models[:-1]) == {"tnd"}  # the folders' other TND variants follow TND's
    assert [r.label for r in table.rows][:2] == ["TND · grid · K=2", "TND · ring · K=1"]


def test_aggregate_rows_per_variant(ablation, tmp_path):
    records = tbl.collect_runs(ablation)
    assert tbl.infer_row_keys(records, ignore=("experiment",)) == ABLATION_KEYS
    expected = [("tnd", g, k) for g in ("ring", "grid") for k in ("1", "2")]
    table = tbl.aggregate(records, keys=ABLATION_KEYS, expected_variants=expected, expected_seeds=[0, 1], paper=None)
    assert [r.label for r in table.rows] == ["ring · K=1", "ring · K=2", "grid · K=1", "grid · K=2"]
    rows = {r.label: r for r in table.rows}
    ring1 = rows["ring · K=1"]
    assert ring1.seeds == (0, 1) and ring1.problems == () and ring1.model == "tnd"
    assert ring1.stats["catch_rate"].mean == pytest.approx(0.5)
    assert ring1.stats["catch_rate"].half_width == pytest.approx(12.706 * 0.1414214 / math.sqrt(2), abs=1e-3)
    assert dict(ring1.variant) == {"model": "tnd", "graph": "ring", "model.options.inner_rounds": "1"}
    assert [r.seed for r in rows["ring · K=2"].failed] == [1]
    assert [r.seed for r in rows["grid · K=1"].missing] == [1]
    assert rows["grid · K=2"].n_seeds == 0 and [r.seed for r in rows["grid · K=2"].missing] == [0, 1]
    assert table.n_problems == 4 and table.is_variant_table

    md = tbl.render_markdown(table)
    assert md.startswith("| Variant | Seeds (ok / expected) |") and "Paper" not in md.splitlines()[0]
    assert "| ring · K=1 | 2 / 2 | 0.500 ± 1.271 |" in md
    assert "- ring · K=2 seed 1: failed: loss is NaN at step 3" in md and "arXiv" not in md

    with tbl.write_csv(table, tmp_path / "a.csv").open() as f:
        reader = csv.DictReader(f)
        lines = list(reader)
    assert reader.fieldnames[:5] == ["source", "model", "label", "graph", "model.options.inner_rounds"]
    assert [(r["graph"], r["model.options.inner_rounds"], r["n_seeds"]) for r in lines] == [
        ("ring", "1", "2"), ("ring", "2", "1"), ("grid", "1", "1"), ("grid", "2", "0")]
    assert all(r["paper_catches_per_round"] == "" for r in lines)

    png = tbl.plot_table(table, tmp_path / "a.png")  # a variant table: sorted horizontal bars
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_variant_folder_without_a_swept_key_is_unidentified(ablation):
    stray = _run_folder(ablation, "tnd", 0, summary=_summary(0.1, 0.1, -9.0), name="stray")  # no graph= override
    table = tbl.aggregate(tbl.collect_runs(ablation), keys=ABLATION_KEYS, paper=None)
    assert [r.path for r in table.unidentified] == [stray]
    assert "graph and model.options.inner_rounds unknown" in tbl.render_markdown(table)


def test_aggregate_only_infers_the_variants(ablation, tmp_path, capsys):
    results = tmp_path / "results"
    rc = driver.main(["--aggregate-only", "--experiment", "tnd_ablation", "--sweep-dir", str(ablation),
                      "--results-dir", str(results)])
    assert rc == 0
    assert {p.name for p in results.iterdir()} == {"tnd_ablation-pong-default.md", "tnd_ablation-pong-default.csv", "tnd_ablation-pong-default.png"}
    out = capsys.readouterr().out
    assert "| ring · K=1 | 2 / 2 |" in out and "| grid · K=1 | 1 / 2 |" in out and "grid · K=2" not in out
    (ablation / "sweep.json").write_text(json.dumps({  # as tnd-table writes it: grid/K=2 expected
        "experiment": "tnd_ablation", "models": ["tnd"], "seeds": [0, 1], "keys": [*ABLATION_KEYS, "seed"],
        "variants": [["tnd", g, k] for g in ("ring", "grid") for k in ("1", "2")]}))
    assert driver.main(["--aggregate-only", "--experiment", "tnd_ablation", "--sweep-dir", str(ablation),
                        "--results-dir", str(results), "scale=paper"]) == 0
    assert "| grid · K=2 | 0 / 2 |" in (results / "tnd_ablation-pong-paper.md").read_text()


@pytest.fixture
def fake_ablation_trainer(fake_trainer, tmp_path) -> str:
    """The fake trainer with a third swept key, ``opt`` (a top-level config value)."""
    app = tmp_path / "app"
    config = app / "conf" / "config.yaml"
    config.write_text(config.read_text() + "opt: x\n")
    (app / "conf" / "experiment" / "ablation.yaml").write_text(textwrap.dedent("""\
        # @package _global_
        hydra:
          sweeper:
            params:
              model: a
              opt: x,y
              seed: 0,1
        """))
    return fake_trainer


def test_ablation_sweep_folders_resume_and_narrowing(fake_ablation_trainer, tmp_path, capsys):
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    args = ["--experiment", "ablation", "--train-command", fake_ablation_trainer, "--sweep-dir", str(sweep_dir),
            "--results-dir", str(results), "--no-stack-seeds", "--jobs", "1"]
    launches = lambda: {p.parent.name: len(p.read_text()) for p in sweep_dir.glob("*/launched.txt")}  # noqa: E731

    assert driver.main([*args, "opt=y", "seed=1"]) == 0  # narrowed: the folder still names opt
    assert launches() == {"model=a,opt=y,seed=1": 1}
    assert driver.main(args) == 0  # the full sweep reuses that folder
    assert launches() == {"model=a,opt=x,seed=0": 1, "model=a,opt=x,seed=1": 1,
                          "model=a,opt=y,seed=0": 1, "model=a,opt=y,seed=1": 1}
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert sweep["keys"] == ["model", "opt", "seed"] and sweep["variants"] == [["a", "x"], ["a", "y"]]
    md = (results / "ablation-default.md").read_text()
    assert "| opt=x | 2 / 2 |" not in md and "| x | 2 / 2 |" in md and "| y | 2 / 2 |" in md
    (sweep_dir / "model=a,opt=x,seed=1" / "summary.json").unlink()  # killed: unfinished
    assert driver.main(args) == 0
    assert launches()["model=a,opt=x,seed=1"] == 2 and launches()["model=a,opt=y,seed=0"] == 1
    capsys.readouterr()
    assert driver.main([*args, "+extra=1"]) == 2  # finished folders made with other overrides: refused
    assert "Pass another --sweep-dir" in capsys.readouterr().err


@pytest.mark.slow
@needs_files("experiments/train.py", "conf/experiment/tnd_ablation.yaml", "conf/scale/smoke.yaml")
def test_smoke_ablation(tmp_path, monkeypatch):
    """tnd-table --experiment tnd_ablation end to end: two variants (dynamics), one seed, the smoke budget."""
    monkeypatch.chdir(REPO)
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    args = ["--experiment", "tnd_ablation", "scale=smoke", "graph=layered_ncp", "model.options.inner_rounds=1",
            "model.options.dynamics=leaky,gated", "model.options.interaction=scalar", "seed=0",
            "--sweep-dir", str(sweep_dir), "--results-dir", str(results), "--no-stack-seeds"]
    assert driver.main(args) == 0
    with (results / "tnd_ablation-pong-smoke.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["source"] == "ours"]
    assert sorted(r["model.options.dynamics"] for r in rows) == ["gated", "leaky"]
    assert all(r["n_seeds"] == "1" and r["graph"] == "layered_ncp" for r in rows)
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == [
        f"graph=layered_ncp,model.options.dynamics={d},model.options.inner_rounds=1,"
        f"model.options.interaction=scalar,model=tnd,seed=0,tuned=none" for d in ("gated", "leaky")]
    assert (results / "tnd_ablation-pong-smoke.png").exists()
    assert driver.main(args) == 0  # resumed: nothing to rerun


def test_a_new_metric_is_one_declaration(sweep, tmp_path, monkeypatch):
    """Declaring a `Metric` adds it to the table's Markdown, CSV and plot; nothing else changes."""
    import types as types_

    from tnd.evaluation.table import columns

    extra = tbl.Metric("eval_seconds", "Eval time (s)", "{:.1f}", lower=0.0, higher_is_better=False)
    monkeypatch.setattr(columns, "METRIC", types_.MappingProxyType({**columns.METRIC, extra.name: extra}))
    table = tbl.aggregate(tbl.collect_runs(sweep), expected_models=["tnd", "lstm", "cfc"], expected_seeds=[0, 1, 2])
    assert table.metrics[-1] == "eval_seconds" and "eval_seconds" in table.rows[0].stats
    assert "| Eval time (s) |" in tbl.render_markdown(table).replace(" | Paper", " |")
    with tbl.write_csv(table, tmp_path / "t.csv").open() as f:
        assert {"eval_seconds_mean", "eval_seconds_ci95"} <= set(next(csv.reader(f)))
    assert tbl.plot_table(table, tmp_path / "t.png").stat().st_size > 0


def _compose(*overrides):
    from hydra import compose, initialize_config_dir

    from experiments import schema  # noqa: F401  (structured configs)
    from experiments.common import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="tnd_train", overrides=list(overrides), return_hydra_config=True)


def test_the_table_switches_env_with_its_own_scale():
    """`tnd-table env=atari_pong` gets conf/table/pong_table-atari_pong.yaml (sticky actions,
    no-op starts, its data, steps, games and seeds) after the experiment and before scale=..."""
    pong = _compose("experiment=pong_table")
    atari = _compose("experiment=pong_table", "env=atari_pong")
    smoke = _compose("experiment=pong_table", "env=atari_pong", "scale=smoke")
    plain = _compose("env=atari_pong")  # no experiment: nothing of the table
    assert (pong.env.name, pong.data.num_episodes, pong.train.steps, pong.eval.num_games) == ("pong", 32, 3000, 64)
    assert pong.hydra.sweeper.params.seed == "0,1,2,3,4"
    assert (atari.env.name, atari.data.num_episodes, atari.train.steps, atari.eval.num_games) == ("atari_pong", 48, 6000, 16)
    assert atari.env.options.repeat_action_probability == 0.25 and atari.env.options.noop_max == 30
    assert atari.env.options.expert == "rule"
    assert atari.hydra.sweeper.params.seed == "0,1,2" and atari.eval.seed == pong.eval.seed != atari.data.seed
    assert atari.hydra.sweeper.params["dagger.rounds"] == "3"  # DAgger (dagger.rounds=3,0 adds plain behavior cloning)
    models = atari.hydra.sweeper.params.model.split(",")  # the same models, launched slowest first
    assert sorted(models) == sorted(pong.hydra.sweeper.params.model.split(",")) and models[-1] == "rnn"
    assert (atari.dagger.games_per_round, atari.dagger.steps_per_round) == (8, 2000)
    assert atari.train.lr == pong.train.lr and atari.param_budget == pong.param_budget == 9000
    assert (smoke.data.num_episodes, smoke.train.steps, smoke.env.options.max_steps) == (2, 8, 200)
    assert (plain.data.num_episodes, plain.train.steps) == (_compose().data.num_episodes, _compose().train.steps)
    from tnd.envs.atari_pong import game_seed

    def games(seed, count):
        return {game_seed(seed, g) for g in range(count)}

    train_games = games(atari.data.seed, atari.data.num_episodes)
    test_games = games(atari.eval.seed, atari.eval.num_games)
    validation_games = games(atari.eval.validation_seed, atari.eval.num_games)
    assert len(train_games) == 48 and len(test_games) == 16  # every game its own seed
    assert not train_games & test_games and not validation_games & test_games and not train_games & validation_games
    from tnd.app.dagger import round_seed
    from tnd.app.spec import load_spec

    spec = load_spec(["experiment=pong_table", "env=atari_pong"])
    dagger_games = set().union(*(games(round_seed(dataclasses.replace(spec, seed=seed), r), atari.dagger.games_per_round)
                                 for seed in (0, 1, 2) for r in (1, 2, 3)))
    assert len(dagger_games) == 3 * 3 * 8
    assert not dagger_games & (test_games | validation_games | train_games)


def test_the_atari_table_has_its_own_paper_scale():
    """`tnd-table env=atari_pong scale=paper` gets conf/table_scale/pong_table-atari_pong-paper.yaml
    after scale=paper (not the single-player paper scale's 256 test games), and its longer protocol
    keeps the DAgger, training, validation and test games apart."""

    from tnd.app.dagger import round_seed
    from tnd.app.spec import load_spec
    from tnd.envs.atari_pong import game_seed

    atari = _compose("experiment=pong_table", "env=atari_pong")
    paper = _compose("experiment=pong_table", "env=atari_pong", "scale=paper")
    pong_paper = _compose("experiment=pong_table", "scale=paper")
    assert (pong_paper.data.num_episodes, pong_paper.train.steps, pong_paper.eval.num_games) == (64, 6000, 256)
    assert (paper.data.num_episodes, paper.train.steps, paper.eval.num_games) == (96, 12000, 32)
    assert paper.hydra.sweeper.params.seed == "0,1,2,3,4" and paper.hydra.sweeper.params["dagger.rounds"] == "5"
    assert paper.env.options == atari.env.options and paper.train.lr == atari.train.lr

    def games(seed, count):
        return {game_seed(seed, g) for g in range(count)}

    train_games = games(paper.data.seed, paper.data.num_episodes)
    held_out = games(paper.eval.seed, paper.eval.num_games) | games(paper.eval.validation_seed, paper.eval.num_games)
    spec = load_spec(["experiment=pong_table", "env=atari_pong", "scale=paper", "dagger.rounds=5"])
    dagger_games = set().union(*(games(round_seed(dataclasses.replace(spec, seed=seed), r), paper.dagger.games_per_round)
                                 for seed in range(5) for r in range(1, 6)))
    assert len(train_games) == 96 and len(held_out) == 64 and len(dagger_games) == 5 * 5 * 8
    assert not dagger_games & (held_out | train_games) and not train_games & held_out


def test_paper_figures_name_their_protocol_beside_atari_runs(tmp_path):
    root = tmp_path / "multirun" / "pong_table" / "atari_pong" / "default"
    for env, seed in (("atari_pong", 0), ("atari_pong", 1)):
        _run_folder(root, "tnd", seed, summary={**_summary(0.5, 1.0, -2.0), "env": env})
    markdown = tbl.render_markdown(tbl.aggregate(tbl.collect_runs(root)))
    header = markdown.splitlines()[0]
    assert "Paper, single-player Pong (another protocol): catches / round †" in header
    assert "not the paper's single-player Pong protocol" in markdown
    pong = tbl.render_markdown(tbl.aggregate(tbl.collect_runs(_sweep_of_pong(tmp_path))))
    assert "| Paper: catches / round † |" in pong.splitlines()[0]


def _sweep_of_pong(tmp_path) -> Path:
    root = tmp_path / "pong"
    _run_folder(root, "tnd", 0, summary=_summary(0.5, 1.0, -2.0))
    return root


def test_the_plot_draws_the_papers_bars_only_beside_its_protocol(tmp_path, monkeypatch):
    drawn = []
    from matplotlib.axes import Axes

    original = Axes.bar

    def bar(self, *args, **kwargs):
        drawn.append(kwargs.get("label", ""))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "bar", bar)
    atari = tmp_path / "atari"
    _run_folder(atari, "tnd", 0, summary={**_summary(0.5, 1.0, -2.0), "env": "atari_pong"})
    tbl.plot_table(tbl.aggregate(tbl.collect_runs(atari)), tmp_path / "a.png")
    assert drawn and not any(label.startswith("paper") for label in drawn)
    drawn.clear()
    tbl.plot_table(tbl.aggregate(tbl.collect_runs(_sweep_of_pong(tmp_path))), tmp_path / "p.png")
    assert any(label.startswith("paper") for label in drawn)


# --------------------------------------------------------------------------- seeds in one program


def test_stacked_launches_keep_structural_graph_models_one_job_per_seed():
    jobs = sweeps.plan_jobs({"model": "sparse_rnn,tnd,lstm,rnn", "seed": "0,1,2"}, "x", [])
    launches = sweeps.launch_groups(jobs, sweeps.SWEPT_KEYS, stack_seeds=True)
    alone = [g.overrides for g in launches if not g.stacked]
    together = [g.overrides for g in launches if g.stacked]
    assert alone == [["experiment=x", "model=sparse_rnn", "seed=0,1,2"]]  # its per-seed graph is its structure
    # TND holds its graph as data: its seeds, each with its own graph, stack like the baselines
    assert together == [["experiment=x", "model=tnd,lstm,rnn", "seed=0", "seeds=[0,1,2]"]]
    fixed_graph = sweeps.plan_jobs({"model": "sparse_rnn", "seed": "0,1"}, "x", ["graph.seed=7"])
    assert [g.stacked for g in sweeps.launch_groups(fixed_graph, sweeps.SWEPT_KEYS, stack_seeds=True)] == [True]
    assert all(not g.stacked for g in sweeps.launch_groups(jobs, sweeps.SWEPT_KEYS, stack_seeds=False))



def test_jobs_with_dagger_rounds_run_one_job_per_seed():
    """A DAgger job's seeds play their own games between rounds and train one after another even
    in one seeds=[...] job: as separate jobs the launcher's slots run them side by side."""
    keys = ("model", "dagger.rounds", "seed")
    jobs = sweeps.plan_jobs({"model": "tnd,lstm", "dagger.rounds": "3,0", "seed": "0,1"}, "x", [])
    launches = sweeps.launch_groups(jobs, keys, stack_seeds=True)
    assert [(g.stacked, g.overrides) for g in launches] == [
        (False, ["experiment=x", "model=tnd,lstm", "dagger.rounds=3", "seed=0,1"]),
        (True, ["experiment=x", "model=tnd,lstm", "dagger.rounds=0", "seed=0", "seeds=[0,1]"]),
    ]
    # dagger.rounds set in the experiment's conf, not swept: the sweep's composed value decides
    plain = sweeps.plan_jobs({"model": "tnd", "seed": "0,1"}, "x", [])
    assert [g.stacked for g in sweeps.launch_groups(plain, sweeps.SWEPT_KEYS, True, dagger_rounds=2)] == [False]
    assert [g.stacked for g in sweeps.launch_groups(plain, sweeps.SWEPT_KEYS, True, dagger_rounds=0)] == [True]
    with pytest.raises(sweeps.SweepError, match="dagger.rounds must be an integer"):
        sweeps.stacks_seeds(["model=tnd", "dagger.rounds=many", "seed=0"])

def test_collect_runs_reads_each_seed_of_a_stacked_job(tmp_path):
    job = tmp_path / "model=lstm"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["model=lstm", "seed=0", "seeds=[0,1]"]))
    for seed in (0, 1):
        run = job / f"seed={seed}"
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["model=lstm", f"seed={seed}"]))
    (job / "seed=0" / "summary.json").write_text(json.dumps({"model": "lstm", "seed": 0, "catch_rate": 0.5}))
    records = tbl.collect_runs(tmp_path)
    assert [(r.model, r.seed, r.status, r.path.name) for r in records] == [
        ("lstm", 0, "ok", "seed=0"), ("lstm", 1, "unfinished", "seed=1")]


@pytest.mark.slow
@needs_files("experiments/train.py", "conf/experiment/pong_table.yaml", "conf/scale/smoke.yaml")
def test_smoke_sweep_with_stacked_seeds(tmp_path, monkeypatch):
    """tnd-table --stack-seeds: the LSTM's seeds train as one job, and so do TND's, each seed
    with its own graph; the table reads the layout, and a rerun launches nothing."""
    monkeypatch.chdir(REPO)
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    argv = ["scale=smoke", "model=tnd,lstm", "seed=0,1", "--stack-seeds", "--sweep-dir", str(sweep_dir),
            "--results-dir", str(results)]
    assert driver.main(argv) == 0
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["model=lstm", "model=tnd"]
    for model in ("lstm", "tnd"):
        for seed in (0, 1):
            folder = sweep_dir / f"model={model}" / f"seed={seed}"
            summary = json.loads((folder / "summary.json").read_text())
            assert (summary["model"], summary["seed"]) == (model, seed)
            assert f"run {folder}: model={model}" in (folder / "train.log").read_text()  # the stack's log lines
    tnd_graphs = {json.loads((sweep_dir / "model=tnd" / f"seed={s}" / "summary.json").read_text())["model_options"]
                  ["graph_seed"] for s in (0, 1)}
    assert tnd_graphs == {0, 1}  # one program, a graph per seed
    with (results / "pong_table-pong-smoke.csv").open() as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert rows["lstm"]["n_seeds"] == "2" and rows["tnd"]["n_seeds"] == "2"
    stamp = (sweep_dir / "model=lstm" / "seed=1" / "summary.json").stat().st_mtime_ns
    assert driver.main(argv) == 0
    assert (sweep_dir / "model=lstm" / "seed=1" / "summary.json").stat().st_mtime_ns == stamp


def test_the_table_uses_the_machine_cores_by_default_and_says_so(monkeypatch):
    monkeypatch.setattr(multirun, "default_jobs", lambda: 2)
    assert multirun.launcher_overrides([], None) == (
        ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2"],
        "2 jobs at a time, one per CPU core (--jobs 1 runs one at a time)")
    assert multirun.launcher_overrides([], 1) == ([], "1 job at a time (--jobs N runs N at a time)")
    assert multirun.launcher_overrides(["hydra/launcher=slurm"], None)[0] == []  # a named launcher wins
    with pytest.raises(sweeps.SweepError, match="--jobs must be at least 1"):
        multirun.launcher_overrides([], 0)
    monkeypatch.undo()
    assert multirun.default_jobs() >= 1
