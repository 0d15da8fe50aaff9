"""The entry points' contract for faults (issue 27): bad input is ONE readable line on stderr
(exit 1), never a traceback, never a silent fallback; Ctrl-C is one line and exit 130; a
refused writer changes nothing in the run folder it was refused; progress shows without a
terminal; a summary's evaluation steps are not confused with its training steps."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from experiments import collect as collect_entry
from experiments import evaluate as eval_entry
from experiments import render as render_entry
from experiments import train as train_entry
from experiments import tune as tune_entry
from tnd.run_folder import EVAL_STEPS_KEY, LOCK_FILE, RECORD_DIR, eval_metrics, path_problem

from train_helpers import TINY, assert_one_readable_error, call_main, data_root  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
TND_TRAIN = Path(sys.executable).parent / "tnd-train"


def one_error_line(capsys, *fragments: str) -> str:
    """The single non-empty line on stderr (no traceback), holding every fragment."""
    err = assert_one_readable_error(capsys, *fragments)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------ 1. a refused writer changes nothing
@pytest.mark.parametrize("mode", ["run", "multirun"])
def test_a_refused_second_writer_leaves_the_running_runs_folder_unchanged(tmp_path, monkeypatch, capsys, mode):
    folder = tmp_path / ("job" if mode == "multirun" else "run")
    record = folder / RECORD_DIR
    record.mkdir(parents=True)
    for name, text in {"config.yaml": "model:\n  name: tnd\n", "overrides.yaml": "- model=tnd\n",
                       "hydra.yaml": "hydra: {}\n"}.items():
        (record / name).write_text(text)
    with open(folder / LOCK_FILE, "w") as held:  # the running run's lock (flock: as if another process)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        if mode == "run":
            argv = [f"hydra.run.dir={folder}", "model=lstm", "train.lr=0.5"]
        else:
            argv = ["hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=job", "model=lstm",
                    "train.lr=0.5"]
        status = call_main(train_entry.main, argv, monkeypatch)
    assert status == (1 if mode == "run" else 0)  # a multirun marks the job failed and goes on
    one_error_line(capsys, "tnd-train: error: Run folder", "is in use by another process")
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before  # the record byte for byte, and no error.json, no new file


# ------------------------------------------------------------------ 2. Ctrl-C at any moment
def _start_up_done(pid: int) -> bool:
    """JAX's library is loaded: the command is in its imports (Linux: /proc/<pid>/maps)."""
    try:
        return "jaxlib" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


MOMENTS = {  # when to press Ctrl-C: a condition on (process, run folder), and the lines it may print
    "start-up": (lambda proc, run: _start_up_done(proc.pid), ("tnd-train: interrupted",)),
    # a loaded machine may reach the first step before the interrupt is handled: then it names the step
    "data and compilation": (lambda proc, run: (run / LOCK_FILE).exists(),
                             ("tnd-train: interrupted; rerun with: ", "tnd-train: interrupted at step ")),
    "training": (lambda proc, run: (run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text().strip(),
                 ("tnd-train: interrupted at step ",)),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_ctrl_c_at_any_moment_prints_one_line_and_exits_130(tmp_path, data_root, moment):  # noqa: F811
    if moment == "start-up" and not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc to see the command's start-up")
    ready, line = MOMENTS[moment]
    run = tmp_path / "run"
    argv = [*TINY, "train.steps=100000", "train.log_every=1", "train.checkpoint_every=50", f"data.root={data_root}",
            f"hydra.run.dir={run}"]
    proc = subprocess.Popen([str(TND_TRAIN), *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None and not ready(proc, run):
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, (proc.returncode, out, err)
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(line), err  # str.startswith takes the tuple of allowed lines
    for stray in ("Traceback", "fake_tensor", "Exception ignored", "Segmentation"):
        assert stray not in out + err


# ------------------------------------------------------------------ 3. unknown names and bad values
BAD_INPUT = [  # (entry point, arguments, what the one line must say)
    (train_entry.main, ["model=lstmm"], ["Unknown model 'lstmm'", "did you mean model=lstm?", "cfc, lstm, rnn"]),
    (train_entry.main, ["graph=smallworld"], ["Unknown graph 'smallworld'", "did you mean graph=small_world?"]),
    (train_entry.main, ["env=pongg"], ["Unknown env 'pongg'", "did you mean env=pong?", "atari_pong, pong"]),
    (train_entry.main, ["train.stepz=5"], ["Unknown key 'train.stepz'", "did you mean train.steps?", "batch_size"]),
    (train_entry.main, ["hydra/launcher=nosuch"], ["Unknown hydra/launcher 'nosuch'", "local_parallel"]),
    (train_entry.main, ["train.steps=abc"], ["Bad value for train.steps", "'abc'", "Integer"]),
    (train_entry.main, ["train.steps=nan"], ["Bad value for train.steps", "'nan'", "Integer"]),
    (train_entry.main, ["train.steps=[1,"], ["Cannot read the override 'train.steps=[1,'"]),
    (collect_entry.main, ["env=pongg"], ["tnd-collect: error: Unknown env 'pongg'", "did you mean env=pong?"]),
    (eval_entry.main, ["run_dir=/nonexistent", "eval.seedz=1"], ["tnd-eval: error: Unknown key 'eval.seedz'",
                                                                 "did you mean eval.seed?"]),
    (tune_entry.main, ["model=lstmm"], ["tnd-tune: error: Unknown model 'lstmm'", "did you mean model=lstm?"]),
]


@pytest.mark.parametrize("main, argv, fragments", BAD_INPUT, ids=[" ".join(a) for _, a, _ in BAD_INPUT])
def test_unknown_names_and_bad_values_are_one_line_with_the_valid_choices(tmp_path, monkeypatch, capsys, main, argv,
                                                                         fragments):
    assert call_main(main, [*argv, f"hydra.run.dir={tmp_path / 'out'}"], monkeypatch) == 1
    one_error_line(capsys, *fragments)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_hydra_full_error_still_shows_hydras_own_error(tmp_path, monkeypatch):
    from hydra.errors import MissingConfigException

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(MissingConfigException):
        call_main(train_entry.main, ["model=lstmm", f"hydra.run.dir={tmp_path}"], monkeypatch)


# ------------------------------------------------------------------ 4. a group value that is a path
@pytest.mark.parametrize("override", ["model=../env/pong", "env=../env/pong", "model=tnd,../env/pong",
                                      "graph=/etc/passwd"])
def test_a_config_group_value_that_is_a_path_is_refused(tmp_path, monkeypatch, capsys, override):
    group = override.partition("=")[0]
    argv = ["hydra.mode=MULTIRUN", override] if "," in override else [override]
    assert call_main(train_entry.main, [*argv, f"hydra.run.dir={tmp_path / 'out'}"], monkeypatch) == 1
    line = one_error_line(capsys, f"tnd-train: error: {group}=", "not a path", f"Valid {group} options:")
    assert "tuned" not in line


# ------------------------------------------------------------------ 5. seeds
@pytest.mark.parametrize("override, name", [("seed=-1", "seed"), ("seeds=[0,-1]", "seeds"), ("data.seed=-1", "data.seed"),
                                            ("eval.seed=-1", "eval.seed"), ("seed=4294967296", "seed"),
                                            ("graph.seed=-3", "graph.seed")])
def test_negative_or_too_large_seeds_are_refused(tmp_path, monkeypatch, capsys, override, name):
    argv = [*TINY, override, f"data.root={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}"]
    assert call_main(train_entry.main, argv, monkeypatch) == 1
    one_error_line(capsys, f"tnd-train: error: {name} must be an integer from 0 to 4294967295")
    assert not (tmp_path / "data").exists()  # refused before any data was collected


def test_seeds_of_the_other_commands_are_refused_alike(tmp_path, monkeypatch, capsys):
    argv = ["data.seed=-1", f"data.root={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'c'}"]
    assert call_main(collect_entry.main, argv, monkeypatch) == 1
    one_error_line(capsys, "tnd-collect: error: data.seed must be an integer from 0")
    assert call_main(eval_entry.main, [str(tmp_path), "eval.seed=-1", f"hydra.run.dir={tmp_path / 'e'}"], monkeypatch) == 1
    one_error_line(capsys, "tnd-eval: error: eval.seed must be an integer from 0")
    assert render_entry.main([str(tmp_path), "--seed", "-1"]) == 2
    one_error_line(capsys, "tnd-render: error: --seed must be an integer from 0")


# ------------------------------------------------------------------ 6. plugins
def test_a_plugin_that_cannot_be_imported_is_refused_alike_by_every_command(tmp_path, monkeypatch, capsys):
    assert call_main(train_entry.main, ["plugins=[../evil]", f"hydra.run.dir={tmp_path / 'r0'}"], monkeypatch) == 1
    one_error_line(capsys, "'../evil' is not a Python module name")

    missing = "no_such_plugin_module_27"
    assert call_main(train_entry.main, [f"plugins=[{missing}]", f"hydra.run.dir={tmp_path / 'r1'}"], monkeypatch) == 1
    trained = one_error_line(capsys, f"Cannot import plugin module '{missing}'").partition("error: ")[2]
    run = tmp_path / "some_run"
    run.mkdir()
    assert call_main(eval_entry.main, [str(run), f"plugins=[{missing}]", f"hydra.run.dir={tmp_path / 'e'}"],
                     monkeypatch) == 1
    assert one_error_line(capsys).partition("error: ")[2] == trained
    assert render_entry.main([str(run), "--plugins", missing]) == 2
    assert one_error_line(capsys).partition("error: ")[2] == trained


# ------------------------------------------------------------------ 7. folders that cannot be used
def _file(tmp_path: Path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("not a folder\n")
    return path


PATH_CASES = {  # name: (overrides, what the one line must say); "{file}" is a regular file
    "run folder under a file": (["hydra.run.dir={file}/run"], ["Cannot use {file}/run", "{file} is a file, not a folder"]),
    "run folder that is a file": (["hydra.run.dir={file}"], ["Cannot use {file} as a folder: it is a file"]),
    "data root under a file": (["hydra.run.dir={tmp}/run", "data.root={file}/data"],
                               ["Cannot use {file}/data", "{file} is a file, not a folder"]),
    "run folder in a read-only folder": (["hydra.run.dir={tmp}/read_only/run"],
                                         ["Cannot write {tmp}/read_only/run: permission denied"]),
    "read-only run folder": (["hydra.run.dir={tmp}/read_only"], ["Cannot write {tmp}/read_only/", "permission denied"]),
}


@pytest.mark.parametrize("case", list(PATH_CASES))
def test_a_folder_that_cannot_be_used_is_one_line_naming_it(tmp_path, monkeypatch, capsys, case):
    if "read-only" in case:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders (path_problem's message is checked below)")
        (tmp_path / "read_only").mkdir(mode=0o555)
    overrides, fragments = PATH_CASES[case]
    fill = {"file": str(_file(tmp_path)), "tmp": str(tmp_path)}
    argv = [*TINY, *(o.format(**fill) for o in overrides)]
    assert call_main(train_entry.main, argv, monkeypatch) == 1
    one_error_line(capsys, *(f.format(**fill) for f in fragments))


def test_path_problems_say_what_is_wrong_and_what_to_do(tmp_path):
    target = tmp_path / "runs" / "x"
    for code, said in ((errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system"),
                       (errno.ENOSPC, "no space left")):
        line = path_problem(OSError(code, os.strerror(code), str(target)))
        assert str(target) in line and said in line and "\n" not in line


# ------------------------------------------------------------------ 8. progress without a terminal
def test_progress_shows_as_lines_when_stderr_is_not_a_terminal(capsys, monkeypatch):
    from test_training import Tiny, memory_task, spec
    from tnd.data.windows import make_windows
    from tnd.training.loop import train

    windows = make_windows(memory_task(), 8, num_actions=3)
    train(Tiny(nnx.Rngs(0)), windows, spec(steps=6, log_every=2, progress=True), seed=0, class_weights=np.ones(3),
          tensorboard=False)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("train: step ")]
    assert [x.split(" (")[0] for x in lines] == ["train: step 2/6", "train: step 4/6", "train: step 6/6"]
    assert all(", loss " in x and " steps/s, ETA " in x for x in lines), lines

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)  # a terminal: the bar, no lines
    train(Tiny(nnx.Rngs(0)), windows, spec(steps=2, log_every=1, progress=True), seed=0, class_weights=np.ones(3),
          tensorboard=False)
    assert "train: step " not in capsys.readouterr().err


# ------------------------------------------------------------------ 9. evaluation steps vs training steps
@pytest.mark.slow
def test_summaries_name_evaluation_steps_apart_from_training_steps(tmp_path, monkeypatch, capsys, data_root):  # noqa: F811
    from tnd.evaluation.table import read_run

    run = tmp_path / "run"
    argv = [*TINY, f"data.root={data_root}", f"hydra.run.dir={run}"]
    assert call_main(train_entry.main, argv, monkeypatch) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_steps"] == 4 and summary[EVAL_STEPS_KEY] == 100 and "steps" not in summary  # TINY
    assert read_run(run).metrics[EVAL_STEPS_KEY] == 100

    old = {k: v for k, v in summary.items() if k != EVAL_STEPS_KEY} | {"steps": 100}  # written before the rename
    (run / "summary.json").write_text(json.dumps(old))
    assert read_run(run).metrics[EVAL_STEPS_KEY] == 100
    assert eval_metrics({"steps": 7, "games": 1}) == {EVAL_STEPS_KEY: 7, "games": 1}


def test_a_ctrl_c_that_a_library_turns_into_its_own_error_is_still_an_interrupt(tmp_path, capsys):
    """Ctrl-C raised inside a library that catches it and raises its own error (as OmegaConf's
    handlers can) still ends with the interrupt's line and 130, not with that error."""
    import os

    from experiments.common import report_errors

    with pytest.raises(SystemExit) as stop, report_errors(tmp_path, {}, "tnd-train"):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # raises KeyboardInterrupt here, and is remembered
            time.sleep(1)
        except KeyboardInterrupt:
            raise RuntimeError("a library's own error, raised while handling Ctrl-C") from None
    assert stop.value.code == 130
    err = capsys.readouterr().err
    assert err.startswith("tnd-train: interrupted") and "RuntimeError" not in err
