"""Checkpoints and run folders you can trust: guards, integrity, drift, locks, bad settings."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from flax import nnx

from tnd.envs.demonstrations import Demonstrations
from tnd.data.storage import DatasetError, load_demonstrations, save_demonstrations
from tnd.data.windows import make_windows
from tnd.graph import NeuronGraph, build_topology, register_topology
from tnd.graph.neuron_graph import GraphError
from tnd.models import build_model
from tnd.run_folder import RunFolderBusy, run_folder_lock
from tnd.training.checkpoint import Checkpointer, CheckpointError, CheckpointWarning, DamagedCheckpointError
from tnd.training.loop import NonFiniteLossError, TrainSpecError, train

from test_training import Tiny, memory_task, params_of, spec


def _train(run_dir, steps=4, **kw):
    w = make_windows(memory_task(), 8, num_actions=3)
    model = Tiny(nnx.Rngs(0))
    result = train(model, w, spec(steps=steps, checkpoint_every=2, **kw), seed=0, class_weights=np.ones(3),
                   run_dir=run_dir, tensorboard=False, config={"train": {"lr": kw.get("lr", 1e-2)}})
    return model, result


# ------------------------------------------------------------------ 1. no bad state saved


def test_a_diverging_update_is_not_applied_and_never_saved(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"at step 1: the update would make the parameters diverge"):
        _train(tmp_path, lr=1e30, warmup_steps=0)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() is None  # nothing was saved: the only state was the diverged one


def test_only_finite_parameters_are_restored(tmp_path):
    import jax

    _train(tmp_path)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    _, params, rest = nnx.split(Tiny(nnx.Rngs(0)), nnx.Param, ...)
    _, _, opt_state, meta = ckpt.restore(4, params=params, rest=rest, opt_state=_opt_template(params))
    ckpt.save(6, params=jax.tree.map(lambda x: x * np.nan, params), rest=rest, opt_state=opt_state, meta=meta)
    ckpt.wait()  # written by hand: the train loop never saves such a state
    with pytest.raises(DamagedCheckpointError, match="non-finite parameters"):
        ckpt.restore_params(6, params=params, rest=rest)


def _opt_template(params):
    from tnd.training.optimizer import make_optimizer

    tx, _ = make_optimizer(lr=1e-2, steps=4, warmup_steps=2, min_lr_ratio=0.05, weight_decay=1e-4, clip_norm=1.0)
    return tx.init(params)


# ------------------------------------------------------------------ 2. integrity


def _flip_bytes(step_dir, count=64):
    files = sorted((f for f in step_dir.rglob("*") if f.is_file() and "params" in str(f)), key=lambda f: -f.stat().st_size)
    data = bytearray(files[0].read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(len(data), middle + count)):
        data[i] ^= 0xFF
    files[0].write_bytes(bytes(data))


@pytest.mark.slow
def test_flipped_bytes_are_detected_and_the_newest_intact_step_is_used(tmp_path):
    _train(tmp_path, steps=4)
    _flip_bytes(tmp_path / "checkpoints" / "4")
    ckpt = Checkpointer(tmp_path / "checkpoints")
    _, params, rest = nnx.split(Tiny(nnx.Rngs(0)), nnx.Param, ...)
    with pytest.raises(DamagedCheckpointError):
        ckpt.restore_params(4, params=params, rest=rest)
    with pytest.warns(CheckpointWarning, match="checkpoint 4 is damaged; using checkpoint 2 instead"):
        step, _ = ckpt.restore_intact(lambda s: ckpt.restore_params(s, params=params, rest=rest))
    assert step == 2
    # resuming walks back the same way and still ends like an uninterrupted run
    straight, _ = _train(tmp_path / "straight", steps=6)
    with pytest.warns(CheckpointWarning):
        resumed, result = _train(tmp_path, steps=6)
    assert result.resumed_from == 2
    for a, b in zip(params_of(straight), params_of(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_no_intact_checkpoint_is_one_error(tmp_path):
    _train(tmp_path, steps=4)
    for step in ("2", "4"):
        _flip_bytes(tmp_path / "checkpoints" / step)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)  # one error, no "using checkpoint N instead" first
        with pytest.raises(DamagedCheckpointError, match="No intact checkpoint"):
            _train(tmp_path, steps=6)


@pytest.mark.slow
def test_a_missing_manifest_is_one_line(tmp_path):
    _train(tmp_path, steps=2)
    for manifest in (tmp_path / "checkpoints" / "2").rglob("manifest.ocdbt"):
        manifest.unlink()
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from flax import nnx
        from test_training import Tiny
        from tnd.training.checkpoint import Checkpointer, CheckpointError
        ckpt = Checkpointer({str(tmp_path / 'checkpoints')!r})
        _, params, rest = nnx.split(Tiny(nnx.Rngs(0)), nnx.Param, ...)
        try:
            ckpt.restore_params(2, params=params, rest=rest)
        except CheckpointError as exc:
            print("ERROR:", exc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "ERROR: Checkpoint" in proc.stdout, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


# ------------------------------------------------------------------ 3. config drift


def test_resuming_under_another_config_is_refused_unless_asked(tmp_path):
    _train(tmp_path, steps=4)
    w = make_windows(memory_task(), 8, num_actions=3)
    changed = {"train": {"lr": 5e-2}}
    with pytest.raises(CheckpointError, match=r"saved under another config \(train.lr: 0.01 -> 0.05\)"):
        train(Tiny(nnx.Rngs(0)), w, spec(steps=6, checkpoint_every=2), seed=0, class_weights=np.ones(3),
              run_dir=tmp_path, tensorboard=False, config=changed)
    result = train(Tiny(nnx.Rngs(0)), w, spec(steps=6, checkpoint_every=2, resume_with_changes=True), seed=0,
                   class_weights=np.ones(3), run_dir=tmp_path, tensorboard=False, config=changed)
    assert result.resumed_from == 4


def test_a_rerun_after_the_last_checkpoint_keeps_the_final_loss(tmp_path):
    _, first = _train(tmp_path, steps=4)
    _, again = _train(tmp_path, steps=4)  # killed after the last checkpoint, before the summary: nothing to train
    assert again.resumed_from == 4 and again.last_metrics["loss"] == first.last_metrics["loss"]


# ------------------------------------------------------------------ 5. settings that silently do nonsense


@pytest.mark.parametrize("change, message", [
    ({"min_lr_ratio": -0.5}, "min_lr_ratio must lie in"),
    ({"clip_norm": float("nan")}, "clip_norm must be a finite number"),
    ({"weight_decay": float("inf")}, "weight_decay must be a finite number"),
    ({"max_to_keep": 0}, "max_to_keep must be >= 1"),
    ({"warmup_steps": 20}, "warmup_steps (20) must not exceed train.steps (10)"),
])
def test_bad_train_settings_are_errors(change, message):
    w = make_windows(memory_task(), 8, num_actions=3)
    with pytest.raises(TrainSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(Tiny(nnx.Rngs(0)), w, dataclasses.replace(spec(), **change), seed=0, class_weights=np.ones(3))


def _graph(*args, **kwargs):
    return NeuronGraph.from_edges(*args, **kwargs)


@pytest.mark.parametrize("make, message", [
    (lambda: build_topology("erdos_renyi", 20, seed=0, density=0), "density must be > 0"),
    (lambda: build_topology("layered_ncp", 20, seed=0, density=0.0), "density must be > 0"),
    (lambda: _graph(4, np.array([0, 2**32 + 1]), np.array([1, 2]), [0], [3]), "4294967297 in senders is out of range"),
    (lambda: _graph(3, [0, 1], [1, 2], [0], [2], labels=["a", "a", "b"]), "label 'a' is used twice"),
    (lambda: _graph(True, [0], [0], [0], [0]), "num_neurons must be a positive integer, got True"),
    (lambda: _graph(4, np.array([[0, 1]]), np.array([[1, 2]]), [0], [3]), "flat \\(1-D\\)"),
    (lambda: register_topology("forty_two", 42), "needs a builder function"),
    (lambda: build_model("lstm", obs_shape=(5,), num_actions=0, rngs=nnx.Rngs(0)), "num_actions >= 1"),
    (lambda: build_model("lstm", obs_shape=(5,), num_actions=3, rngs=nnx.Rngs(0), foo=1),
     "no option 'foo'. Valid options: encoder_features, hidden_size"),
])
def test_bad_graphs_topologies_and_models_are_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_topology_builder_must_return_a_graph():
    @register_topology("returns_nothing")
    def returns_nothing(n, *, rng, seed, num_sensory, num_motor):
        return None

    try:
        with pytest.raises(GraphError, match="returned NoneType, not a NeuronGraph"):
            build_topology("returns_nothing", 10, seed=0)
    finally:  # other tests check the registry against conf/graph/
        from tnd.graph.topologies import _TOPOLOGIES

        _TOPOLOGIES.pop("returns_nothing", None)


# ------------------------------------------------------------------ 6. dataset contents


@pytest.mark.parametrize("edit, message", [
    (lambda d: dataclasses.replace(d, actions=np.full_like(d.actions, 7)), "actions holds 7, outside the 3 actions"),
    (lambda d: dataclasses.replace(d, episode_starts=np.array([0, 300, 10, 20])), "episode_starts"),
    (lambda d: dataclasses.replace(d, catches=d.catches.astype(np.float32)), "catches has dtype float32"),
])
def test_datasets_with_matching_checksums_are_checked_for_content(tmp_path, edit, message):
    bad = edit(memory_task())
    save_demonstrations(bad, tmp_path / "d")  # checksums are of the bad arrays: they match
    with pytest.raises(DatasetError, match=message):
        load_demonstrations(tmp_path / "d", num_actions=3)


def test_a_dataset_stored_meanwhile_is_kept_not_replaced(tmp_path):
    from tnd.data.storage import dataset_path, load_or_collect

    first = memory_task(seed=1)
    path = dataset_path(tmp_path, {"x": 1})

    def collect_while_another_process_stores_it():
        save_demonstrations(first, path)  # the other process finishes first
        return memory_task(seed=2)

    demos = load_or_collect(tmp_path, {"x": 1}, collect_while_another_process_stores_it, num_actions=3, progress=False)
    np.testing.assert_array_equal(demos.observations, first.observations)
    assert isinstance(demos, Demonstrations)


# ------------------------------------------------------------------ 7. one writer per run folder


def test_a_second_writer_of_a_run_folder_is_refused(tmp_path):
    with run_folder_lock(tmp_path):
        with pytest.raises(RunFolderBusy, match=f"in use by another process \\(pid {os.getpid()}\\)"):
            with run_folder_lock(tmp_path):
                pass
    with run_folder_lock(tmp_path):  # released: taken again
        pass


def test_a_killed_writers_lock_is_taken_over(tmp_path):
    code = f"import os; from tnd.run_folder import run_folder_lock; l = run_folder_lock({str(tmp_path)!r}); l.__enter__(); os._exit(9)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 9
    assert (tmp_path / ".lock").exists()  # the dead process left its lock file behind ...
    with run_folder_lock(tmp_path):  # ... and it is taken over
        pass
