"""One path from overrides to a spec, runs that describe themselves, and a sweep run from tnd.app alone.

- the same overrides give the same `config_hash` from the command line (tnd-train) and from a
  notebook (`tnd.app.load_spec`);
- every run writes ``run.json`` (its spec and overrides) and the table identifies runs by it,
  stacked seeds included, with no Hydra record in their folders;
- `tnd.app.sweep` plans, runs (in this process) and aggregates a tiny sweep, and resumes it.
"""

from __future__ import annotations

import json

import pytest

from experiments import train as train_entry
from tnd.app import config_hash, load_spec, run_seeds, sweep
from tnd.app.spec import SpecError
from tnd.evaluation import table as tables
from tnd.run_folder import RECORD_DIR, RUN_FILE

from train_helpers import TINY, call_main, data_root  # noqa: F401


def test_the_same_overrides_hash_alike_from_the_command_line_and_a_notebook(tmp_path, monkeypatch, data_root):
    overrides = [*TINY, "model=rnn", "seed=3", f"data.root={data_root}", "graph=ring"]
    run = tmp_path / "cli"
    assert call_main(train_entry.main, [*overrides, f"hydra.run.dir={run}"], monkeypatch) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config_hash"] == config_hash(load_spec(overrides))
    described = json.loads((run / RUN_FILE).read_text())
    assert described["overrides"] == overrides and described["spec"]["seed"] == 3


def test_load_spec_takes_one_seed_and_names_bad_overrides():
    with pytest.raises(SpecError, match="run_seeds"):
        load_spec(["seeds=[0,1]"])
    assert load_spec(["model=tnd", "graph=ring"]).model.options.get("topology") is None  # graph= wins over a tuned one


def test_stacked_seeds_describe_themselves_and_the_table_reads_them(tmp_path, data_root):
    overrides = [*TINY, "model=lstm", f"data.root={data_root}"]
    folders = [tmp_path / "model=lstm" / f"seed={s}" for s in (0, 1)]
    run_seeds(load_spec(overrides), [0, 1], folders, overrides=[*overrides, "seeds=[0,1]"])
    for seed, folder in zip((0, 1), folders):
        described = json.loads((folder / RUN_FILE).read_text())
        assert f"seed={seed}" in described["overrides"] and not any(o.startswith("seeds=") for o in described["overrides"])
        assert not (folder / RECORD_DIR).exists()  # no fabricated Hydra record
    records = tables.collect_runs(tmp_path)
    assert [(r.model, r.seed, r.status) for r in records] == [("lstm", 0, "ok"), ("lstm", 1, "ok")]
    assert tables.run_value(records[0], "train.steps") == "4"


def test_a_notebook_plans_runs_and_aggregates_a_sweep_with_tnd_app_alone(tmp_path, data_root, capsys):
    fixed = [o for o in TINY if not o.startswith("experiment=")] + ["train.warmup_steps=2"]
    jobs, keys = sweep.plan_sweep(["model=lstm,rnn", "seed=0,1", *fixed, f"data.root={data_root}"],
                                  experiment="pong_table")
    assert keys == ("model", "seed") and len(jobs) == 4
    where = tmp_path / "table"
    sweep.write_sweep_file(where, "pong_table", [], jobs, keys)
    sweep.run_sweep(jobs, where, keys=keys, stack_seeds=True, progress=False)
    assert sorted(p.name for p in where.iterdir() if p.is_dir()) == ["model=lstm", "model=rnn"]  # stacked seeds
    table = sweep.sweep_table(where)
    assert [row.model for row in table.rows] == ["rnn", "lstm"] and table.n_problems == 0  # the paper's order
    assert all(len(row.seeds) == 2 for row in table.rows)
    capsys.readouterr()
    (where / "model=rnn" / "seed=1" / "summary.json").unlink()  # lost: that seed (its stack) runs again
    sweep.run_sweep(jobs, where, keys=keys, stack_seeds=True, progress=False)
    assert "4 jobs: 3 finished, launching 1" in capsys.readouterr().out
    assert sweep.sweep_table(where).n_problems == 0
    sweep.run_sweep(jobs, where, keys=keys, stack_seeds=True, progress=False)  # resumes: nothing left to run
    assert "launching" not in capsys.readouterr().out


def test_a_damaged_run_description_makes_its_run_failed_and_names_the_file(tmp_path):
    good, bad = tmp_path / "model=rnn,seed=0", tmp_path / "model=rnn,seed=1"
    for folder in (good, bad):
        folder.mkdir()
    (good / RUN_FILE).write_text(json.dumps({"spec": {"model": {"name": "rnn"}, "seed": 0}, "overrides": ["model=rnn"]}))
    (bad / RUN_FILE).write_text("{not json")
    records = {r.path.name: r for r in tables.collect_runs(tmp_path)}
    assert (records[good.name].model, records[good.name].seed, records[good.name].status) == ("rnn", 0, "unfinished")
    assert records[bad.name].status == "failed" and str(bad / RUN_FILE) in records[bad.name].unreadable
