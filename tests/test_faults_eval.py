"""Faults of tnd-eval / tnd-table a user meets (issue 27): each bad input is one readable line
naming what is wrong and how to fix it, never a traceback, a silent fallback or a
misleading message. One test per class of fault."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from experiments import evaluate as eval_entry
from experiments import table as table_entry
from experiments import train as train_entry

from train_helpers import TINY, assert_one_readable_error, call_main, compose_cfg, data_root, train_tiny  # noqa: F401


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory, data_root):  # noqa: F811
    """One tiny tnd-train run (pong, lstm; checkpoints at steps 2 and 4) shared by the tests below."""
    return train_tiny(tmp_path_factory.mktemp("faults_run"), data_root)


def _eval(run: Path, out: Path, monkeypatch, *args: str) -> int:
    return call_main(eval_entry.main, [str(run), "eval.num_games=1", "eval.progress=false", *args,
                                       f"hydra.run.dir={out}"], monkeypatch)


# ------------------------------------------------------------------ 1. env options on the command line
@pytest.mark.slow  # a trained run (lstm_run): ~30 s once
def test_env_options_in_every_documented_form_reach_the_evaluation(lstm_run, tmp_path, monkeypatch, capsys):
    forms = {
        "+env_options.max_steps=50": {"max_steps": 50},           # the documented form
        "env_options.max_steps=50": {"max_steps": 50},            # the same without +
        "env_options={max_steps:50}": {"max_steps": 50},          # a whole dict
        "+eval.env_overrides.max_steps=60": None,                 # the eval overrides: same rules
    }
    for form, options in forms.items():
        cfg = compose_cfg("tnd_eval", eval_entry.hydra_arguments([str(lstm_run), form]))
        if options is not None:
            assert dict(cfg.env_options) == options, form
    both = eval_entry.hydra_arguments([str(lstm_run), "env_options={max_steps:50}", "env_options.ball_speed=0.1"])
    assert dict(compose_cfg("tnd_eval", both).env_options) == {"max_steps": 50, "ball_speed": 0.1}

    # the documented form evaluates with that option, the others as the run trained
    trained = yaml.safe_load((lstm_run / ".hydra" / "config.yaml").read_text())["env"]["options"]
    assert _eval(lstm_run, tmp_path / "e", monkeypatch, "+env_options.max_steps=50", "--json") == 0
    config = json.loads((tmp_path / "e" / "eval.json").read_text())["env_config"]
    assert config["max_steps"] == 50 and config["ball_speed"] == trained["ball_speed"]
    capsys.readouterr()

    # an unknown option: one line naming the valid ones
    assert _eval(lstm_run, tmp_path / "bad", monkeypatch, "+env_options.nosuch=1") == 1
    err = assert_one_readable_error(capsys, "tnd-eval: error: Env 'pong' has no option 'nosuch'",
                                    "Valid options:", "max_steps")
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ 2. evaluations too large for memory
@pytest.mark.slow  # a trained run (lstm_run): ~30 s once
def test_an_evaluation_too_large_for_memory_is_refused_before_any_game_is_seeded(
        lstm_run, tmp_path, monkeypatch, capsys):
    import tnd.envs.pong.evaluate as pong_evaluate
    from tnd.envs import batched_games as jax_play

    def no_seeds(*args, **kwargs):
        raise AssertionError("game seeds were allocated")

    monkeypatch.setattr(pong_evaluate, "game_seeds", no_seeds)
    assert _eval(lstm_run, tmp_path / "e", monkeypatch, "eval.num_games=1000000000000") == 1
    assert_one_readable_error(capsys, "tnd-eval: error: eval.num_games=1,000,000,000,000 would need about",
                              "GiB", "set eval.num_games to at most")
    assert not (tmp_path / "e").exists()

    # what fits is played in bounded batches, so the progress bar moves batch by batch
    seeds = np.arange(10_000)
    chunks = list(jax_play._chunks(seeds, None, steps=2000))
    assert len(chunks) > 1 and all(len(c) * 2000 <= jax_play.GAME_STEPS_PER_CALL for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), seeds)
    assert [len(c) for c in jax_play._chunks(np.arange(32), None, steps=2000)] == [32]  # small ones: one call
    assert compose_cfg("tnd_eval", ["run_dir=x"]).eval.progress  # tnd-eval shows the bar by default


# ------------------------------------------------------------------ 3. tnd-eval's output
@pytest.mark.slow  # a trained run (lstm_run): ~30 s once
def test_eval_prints_one_short_line_with_its_file_and_a_failure_leaves_no_folder(
        lstm_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "e"
    assert _eval(lstm_run, out, monkeypatch) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("tnd-eval: lstm seed=0 (checkpoint 4) on pong, 1 games of eval seed ") and len(line) < 300
    assert line.endswith(f"-> {out / 'eval.json'}") and "catch rate" in line
    assert json.loads((out / "eval.json").read_text())["games"] == 1

    assert _eval(lstm_run, tmp_path / "j", monkeypatch, "--json") == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["games"] == 1

    failed = tmp_path / "failed"
    assert _eval(lstm_run, failed, monkeypatch, "eval.num_envs=0") == 1
    assert_one_readable_error(capsys, "eval.num_envs must be a positive integer")
    assert not failed.exists()


# ------------------------------------------------------------------ fake run folders (no training)
def _fake_run(folder: Path, overrides: list[str], config: dict, summary: dict | None = None) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps({"env": "none", "catch_rate": 0.5, **summary}))
    return folder


def _table(sweep: Path, tmp_path: Path, *args: str) -> int:
    return table_entry.main(["--aggregate-only", "--sweep-dir", str(sweep), "--results-dir", str(tmp_path / "t"),
                             *args])


# ------------------------------------------------------------------ 4. a damaged .hydra record
def test_a_damaged_hydra_record_is_named_the_table_goes_on_and_eval_stops(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "runs"
    config = {"model": {"name": "lstm"}, "seed": 0}
    _fake_run(sweep / "good", ["model=lstm", "seed=0"], config, {"model": "lstm", "seed": 0})
    bad = {
        "malformed": "seed: [unclosed\nmodel: {name: lstm\n",
        "python_tag": 'seed: !!python/object/apply:os.system ["echo tagged"]\n',
    }
    for seed, (name, text) in enumerate(bad.items(), start=1):
        folder = _fake_run(sweep / name, ["model=lstm", f"seed={seed}"], config, {"model": "lstm", "seed": seed})
        (folder / ".hydra" / "config.yaml").write_text(text)

    assert _table(sweep, tmp_path) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "tagged" not in captured.out + captured.err
    warned = [line for line in captured.err.splitlines() if line.startswith("tnd-table: warning: ")]
    assert len(warned) == 2
    assert str(sweep / "malformed" / ".hydra" / "config.yaml") + " is not valid YAML" in warned[0] + warned[1]
    assert str(sweep / "python_tag" / ".hydra" / "config.yaml") + " holds a tag that is not plain data" in "".join(warned)
    table = (tmp_path / "t" / "pong_table-none-default.md").read_text()
    assert "| LSTM | 1 / 3 |" in table and "not valid YAML" in table  # the good run counts, the others are listed

    for name in bad:
        out = tmp_path / f"e_{name}"
        assert call_main(eval_entry.main, [str(sweep / name), f"hydra.run.dir={out}"], monkeypatch) == 1
        err = assert_one_readable_error(capsys, f"tnd-eval: error: {sweep / name / '.hydra' / 'config.yaml'}",
                                        "Restore that file")
        assert len(err.strip().splitlines()) == 1 and not out.exists()


# ------------------------------------------------------------------ 5. --models naming no run
def test_models_that_no_run_folder_holds_are_refused_naming_those_that_exist(tmp_path, capsys):
    sweep = tmp_path / "runs"
    for model in ("lstm", "rnn"):
        _fake_run(sweep / f"model={model},seed=0", [f"model={model}", "seed=0"], {"seed": 0},
                  {"model": model, "seed": 0})
    assert _table(sweep, tmp_path, "--models", "nosuch,lstm") == 2
    err = assert_one_readable_error(capsys, "tnd-table: error: --models nosuch: no run folder of nosuch in",
                                    "the models there: lstm, rnn")
    assert len(err.strip().splitlines()) == 1
    assert _table(sweep, tmp_path, "--models", "lstm") == 0


# ------------------------------------------------------------------ 6. single runs in outputs/train
def test_single_runs_are_identified_from_their_overrides_config_and_summary(tmp_path, capsys):
    from tnd.evaluation import table as tbl

    sweep = tmp_path / "train"
    base = {"train": {"steps": 12}, "seed": 0}
    _fake_run(sweep / "a", ["experiment=smoke", "model=lstm"], {**base, "model": {"name": "lstm"}},
              {"model": "lstm", "seed": 0})
    _fake_run(sweep / "b", ["experiment=smoke", "model=lstm", "train.steps=20", "seed=1"],
              {**base, "model": {"name": "lstm"}, "seed": 1}, {"model": "lstm", "seed": 1})
    _fake_run(sweep / "c", ["experiment=smoke", "seed=2", "train.steps=30"],  # unfinished: the model from its config
              {"train": {"steps": 30}, "model": {"name": "rnn"}, "seed": 2})
    records = {r.path.name: r for r in tbl.collect_runs(sweep)}
    assert [records[k].model for k in "abc"] == ["lstm", "lstm", "rnn"]
    assert tbl.run_value(records["a"], "train.steps") == "12"  # left at its default: from the resolved config
    assert tbl.run_value(records["b"], "train.steps") == "20"

    assert _table(sweep, tmp_path) == 0
    table = (tmp_path / "t" / "pong_table-none-default.md").read_text()
    assert "unknown" not in table
    assert "LSTM · steps=12" in table and "LSTM · steps=20" in table and "Vanilla RNN · steps=30 seed 2: unfinished" in table


# ------------------------------------------------------------------ 7. deleted and damaged checkpoints
@pytest.mark.slow  # a trained run (lstm_run): ~30 s once
def test_a_deleted_checkpoint_warns_like_a_damaged_one_and_none_intact_is_one_error(lstm_run, tmp_path):
    from tnd.app.restore import restore_model
    from tnd.training.checkpoint import STEPS_RECORD, CheckpointWarning, DamagedCheckpointError

    assert json.loads((lstm_run / "checkpoints" / STEPS_RECORD).read_text())["steps"] == [2, 4]
    for keep_summary in (True, False):  # the run's summary.json, or the checkpointer's own record
        run = tmp_path / f"deleted_{keep_summary}"
        shutil.copytree(lstm_run, run)
        shutil.rmtree(run / "checkpoints" / "4")
        if not keep_summary:
            (run / "summary.json").unlink()
        with pytest.warns(CheckpointWarning, match="checkpoint 4 is missing; using checkpoint 2 instead") as caught:
            _, _, meta = restore_model(run)
        assert meta["step"] == 2 and len(caught) == 1

    run = tmp_path / "damaged"
    shutil.copytree(lstm_run, run)
    for step in ("2", "4"):
        for f in (run / "checkpoints" / step).rglob("*"):
            if f.is_file() and f.name != "files.sha256.json":
                f.write_bytes(b"garbage")
    with warnings.catch_warnings(record=True) as caught, pytest.raises(DamagedCheckpointError, match="No intact checkpoint"):
        warnings.simplefilter("always")
        restore_model(run)
    assert not [w for w in caught if issubclass(w.category, CheckpointWarning)]  # one message, not a warning first


def test_a_run_whose_every_checkpoint_is_gone_is_not_trained_afresh(lstm_run, tmp_path, data_root, monkeypatch,  # noqa: F811
                                                                    capsys):
    run = tmp_path / "all_gone"
    shutil.copytree(lstm_run, run)
    for step in ("2", "4"):
        shutil.rmtree(run / "checkpoints" / step)
    status = call_main(train_entry.main, [*TINY, f"data.root={data_root}", f"hydra.run.dir={run}", "train.steps=6"],
                       monkeypatch)
    assert status == 1
    assert_one_readable_error(capsys, "Every checkpoint this run saved is gone", "2, 4")
    assert not (run / "checkpoints" / "6").exists()


# ------------------------------------------------------------------ 8. a run folder that does not exist
def test_a_missing_run_folder_is_named_even_when_its_name_has_an_equals_sign(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nope" / "model=lstm,seed=0"
    for given in (str(missing), f"run_dir={missing}"):
        out = tmp_path / "e"
        assert call_main(eval_entry.main, [given, f"hydra.run.dir={out}"], monkeypatch) == 1
        err = assert_one_readable_error(capsys, f"tnd-eval: error: Run folder {missing} does not exist")
        assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert eval_entry.hydra_arguments(["runs/model=tnd,seed=0", "hydra/launcher=joblib", "eval.seed=3"]) == [
        "run_dir='runs/model=tnd,seed=0'", "hydra/launcher=joblib", "eval.seed=3"]


# ------------------------------------------------------------------ 9. the sweep's ETA
def test_the_sweep_eta_weighs_each_job_by_its_models_length():
    from tnd.app.sweep import JobTiming, sweep_eta

    # 6 models x 5 seeds, two jobs side by side; TND's jobs come first and take 10x the others'
    models = ["tnd"] * 5 + [m for _ in range(5) for m in ("rnn", "sparse_rnn", "lstm", "cfc", "transformer")]
    length = {m: 1000.0 if m == "tnd" else 100.0 for m in models}
    lanes, runs = [0.0, 0.0], []
    for model in models:
        lane = lanes.index(min(lanes))
        runs.append((model, lanes[lane], lanes[lane] + length[model]))
        lanes[lane] += length[model]
    finish = max(end for _, _, end in runs)

    def at(now):
        return [JobTiming(m, s if s <= now else None, e if e <= now else None, ok=e <= now) for m, s, e in runs]

    first = min(end for _, _, end in runs)  # the first TND jobs just finished
    eta = sweep_eta(at(first), first, 0.0)
    assert eta.untimed == ("cfc", "lstm", "rnn", "sparse_rnn", "transformer")
    assert eta.text().startswith("ETA ~") and "rough" in eta.text()

    timed = max(min(e for m, _, e in runs if m == model) for model in set(models))  # every model has run once
    eta = sweep_eta(at(timed), timed, 0.0)
    assert eta.untimed == () and eta.seconds == pytest.approx(finish - timed, rel=0.1)  # a mean job's: 4.5x too long
    assert "rough" not in eta.text()

    assert sweep_eta([JobTiming("tnd", 0.0)], 10.0, 0.0).text() == "ETA after the first job"  # nothing finished
    done = [JobTiming("tnd", 0.0, 100.0, ok=True), JobTiming("tnd")]
    assert sweep_eta(done, 300.0, 200.0).text() == "ETA once a job runs"  # no pace measured yet: no guess
