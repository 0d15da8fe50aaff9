"""A new user's first hour: Ctrl-C, run-folder names, --help, train.log, short result lines."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import evaluate as eval_entry
from experiments import train as train_entry
from experiments.common import hydra_value

from train_helpers import TINY, assert_one_readable_error, call_main, data_root  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def _interrupt_after(monkeypatch, calls: int) -> None:
    """Makes the jitted train step raise KeyboardInterrupt (as Ctrl-C does) on call ``calls + 1``."""
    import tnd.training.loop as loop

    real = loop.make_train_step

    def make(*args, **kwargs):
        step = real(*args, **kwargs)
        count = {"n": 0}

        def interrupted_step(*a, **k):
            count["n"] += 1
            if count["n"] > calls:
                raise KeyboardInterrupt
            return step(*a, **k)

        return interrupted_step

    monkeypatch.setattr(loop, "make_train_step", make)


@pytest.mark.slow
def test_ctrl_c_prints_one_line_whose_command_resumes(tmp_path, monkeypatch, capsys, data_root):  # noqa: F811
    folder = tmp_path / "model=lstm,seed=0"  # a multirun-style name: the printed command must quote it
    argv = [*TINY, "train.steps=6", f"data.root={data_root}", f"hydra.run.dir={hydra_value(str(folder))}"]
    _interrupt_after(monkeypatch, calls=3)
    assert call_main(train_entry.main, argv, monkeypatch) == 130
    err = assert_one_readable_error(capsys, "tnd-train: interrupted at step 3; last checkpoint: step 2 in")
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert not (folder / "error.json").exists() and not (folder / "summary.json").exists()

    command = shlex.split(lines[0].partition("resume with: ")[2])
    assert command[0] == "tnd-train"
    monkeypatch.undo()
    assert call_main(train_entry.main, command[1:], monkeypatch) == 0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["resumed_from"] == 2 and summary["train_steps"] == 6


def test_ctrl_c_before_training_says_rerun(tmp_path, monkeypatch, capsys, data_root):  # noqa: F811
    import tnd.app.experiment as pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "load_dataset", interrupted)
    argv = [*TINY, f"data.root={data_root}", f"hydra.run.dir={tmp_path}"]
    assert call_main(train_entry.main, argv, monkeypatch) == 130
    err = assert_one_readable_error(capsys, "tnd-train: interrupted; rerun with: tnd-train ", f"hydra.run.dir={tmp_path}")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_eval_opens_run_folders_with_equals_and_commas(tmp_path, monkeypatch, capsys, data_root):  # noqa: F811
    folder = tmp_path / "model=lstm,seed=0"
    argv = [*TINY, f"data.root={data_root}", f"hydra.run.dir={hydra_value(str(folder))}"]
    assert call_main(train_entry.main, argv, monkeypatch) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("tnd-train: lstm seed=0 on pong: catch rate ") and len(line) < 250

    for given in ([str(folder)], [f"run_dir={folder}"], [f"run_dir='{folder}'"]):
        status = call_main(eval_entry.main, [*given, "--json", "eval.num_games=1", f"hydra.run.dir={tmp_path / 'e'}"],
                           monkeypatch)
        assert status == 0, given
        assert "catch_rate" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_without_a_run_folder_gives_usage(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tnd-eval", "eval.num_games=1"])
    with pytest.raises(SystemExit) as exit_:
        eval_entry.main()
    assert exit_.value.code == 2
    err = assert_one_readable_error(capsys, "tnd-eval: error: no run folder given", "usage: tnd-eval RUN_DIR")
    assert len(err.strip().splitlines()) == 1


def test_run_dir_arguments_quote_the_folder_for_hydra():
    assert eval_entry.run_dir_arguments(["runs/a", "eval.seed=7"]) == ["run_dir=runs/a", "eval.seed=7"]
    assert eval_entry.run_dir_arguments(["run_dir=m/model=tnd,seed=0"]) == ["run_dir='m/model=tnd,seed=0'"]
    assert eval_entry.run_dir_arguments(["--help"]) == ["--help"]


def _run(module: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def test_help_shows_the_commands_own_usage_and_groups():
    collect = _run("experiments.collect", "--help")
    assert collect.returncode == 0, collect.stderr
    assert collect.stdout.startswith("`tnd-collect`: play expert games")
    groups = collect.stdout.split("== Config groups")[1].split("== Config ==")[0]
    assert "env: atari_pong, pong" in groups and "data: default" in groups
    assert "model:" not in groups and "graph:" not in groups
    train = _run("experiments.train", "--help")
    assert train.returncode == 0 and "powered by Hydra" not in train.stdout
    assert "model: cfc, lstm, rnn, sparse_rnn, tnd, transformer" in train.stdout


@pytest.mark.slow
def test_train_log_holds_the_runs_lines(tmp_path, data_root):  # noqa: F811
    proc = _run("experiments.train", *TINY, f"data.root={data_root}", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = (tmp_path / "train.log").read_text()
    for fragment in ("model=lstm", "step 2: ", "saved checkpoint", "final evaluation", "wrote "):
        assert fragment in log, fragment
    assert "step 2: " not in proc.stdout + proc.stderr  # the rows go to the file, not the console
