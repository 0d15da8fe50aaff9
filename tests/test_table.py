"""The Pong table: t quantiles, aggregation of synthetic Hydra run folders, outputs, driver."""

from __future__ import annotations

import csv
import json
import math
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from experiments import table as driver
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
    assert tbl.student_t_cdf(tbl.student_t_quantile(0.975, df), df) == pytest.approx(0.975, abs=1e-10)


def test_t_quantile_other_levels_and_large_df():
    assert tbl.student_t_quantile(0.995, 10) == pytest.approx(3.169, abs=1e-3)
    assert tbl.student_t_quantile(0.95, 3) == pytest.approx(2.353, abs=1e-3)
    assert tbl.student_t_quantile(0.975, 10_000) == pytest.approx(1.960, abs=1e-3)  # -> normal
    with pytest.raises(ValueError):
        tbl.student_t_quantile(1.0, 3)


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
        assert (results / f"pong_table.{ext}").stat().st_size > 0
    out = capsys.readouterr().out
    assert "| TND | 3 / 3 |" in out and "missing: seed 1, 2" in out


def test_aggregate_only_missing_folder_is_one_error(tmp_path, capsys):
    assert driver.main(["--aggregate-only", "--sweep-dir", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_plan_jobs_follows_hydra_precedence():
    jobs = driver.plan_jobs({"model": "tnd,lstm", "seed": "0,1,2"}, "pong_table", ["seed=5", "train.steps=3"])
    assert [driver._job_id(j) for j in jobs] == [("tnd", 5), ("lstm", 5)]
    assert all("train.steps=3" in j and "experiment=pong_table" in j for j in jobs)
    with pytest.raises(driver.SweepError, match="seed"):
        driver.plan_jobs({"model": "tnd,lstm"}, "pong_table", [])
    with pytest.raises(driver.SweepError, match="train.steps also varies"):
        driver.plan_jobs({"model": "tnd", "seed": "0"}, "pong_table", ["train.steps=1,2"])
    groups = driver._group_jobs([j for j in driver.plan_jobs({"model": "a,b", "seed": "0,1"}, "x", [])
                                 if driver._job_id(j) != ("a", 0)])
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
    args = ["--train-command", fake_trainer, "--sweep-dir", str(sweep_dir), "--results-dir", str(results)]
    launches = lambda: {p.parent.name: len(p.read_text()) for p in sweep_dir.glob("*/launched.txt")}  # noqa: E731

    monkeypatch.setenv("FAKE_FAIL", "b:1")
    assert driver.main(args) == 1  # a failed run: table written, status says so
    assert launches() == {"model=a,seed=0": 1, "model=a,seed=1": 1, "model=b,seed=0": 1, "model=b,seed=1": 1}
    assert "failed: seed 1" in (results / "pong_table.md").read_text()
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


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(
    not all((REPO / p).exists() for p in ("experiments/train.py", "conf/experiment/pong_table.yaml", "conf/scale/smoke.yaml")),
    reason="needs the trainer, conf/experiment/pong_table.yaml and conf/scale/smoke.yaml",
)
def test_smoke_sweep(tmp_path, monkeypatch):
    """tnd-table end to end with the real trainer: two models, one seed, the smoke budget."""
    monkeypatch.chdir(REPO)
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    rc = driver.main(["scale=smoke", "model=tnd,lstm", "seed=0", "--sweep-dir", str(sweep_dir),
                      "--results-dir", str(results)])
    assert rc == 0
    with (results / "pong_table_smoke.csv").open() as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    expert = rows.pop("expert")  # the analytic expert on the runs' own held-out games
    assert expert["source"] == "expert" and float(expert["catch_rate_mean"]) > 0.9
    assert (sweep_dir / "expert_summary.json").exists()
    assert set(rows) == {"tnd", "lstm"} and all(r["n_seeds"] == "1" for r in rows.values())
    assert (results / "pong_table_smoke.md").exists() and (results / "pong_table_smoke.png").exists()
    assert driver.main(["scale=smoke", "model=tnd,lstm", "seed=0", "--sweep-dir", str(sweep_dir),
                        "--results-dir", str(results)]) == 0  # resumed: nothing to rerun
