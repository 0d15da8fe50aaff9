"""Seeds in one program: a stack of seeds trained by one vmapped step equals separate runs.

Tolerance: parameters of a seed trained in a stack equal the same seed trained alone to
``rtol = atol = 1e-5`` after 10 AdamW steps (float32; only the summation order of the
batched matmuls differs). Checkpoints, metrics and resumption stay per seed.
"""

import json

import numpy as np
import pytest
from flax import nnx

from experiments import train as train_entry
from test_training import Tiny, memory_task, params_of, spec
from train_helpers import TINY, assert_one_readable_error, call_main, data_root  # noqa: F401
from tnd.core import ProgramShape
from tnd.data.windows import make_windows
from tnd.models import build_model
from tnd.training.checkpoint import Checkpointer
from tnd.training.logging import read_metrics
from tnd.training.loop import SeedRun, NonFiniteLossError, TrainSpecError, train, train_seeds
from tnd.training.loss import class_weights

SEEDS = (3, 4)
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def task():
    d = memory_task()
    return make_windows(d, 8, num_actions=3), class_weights(d.actions, 3, "weight")


def _stack(tmp_path, windows, weights, **kw):
    members = [SeedRun(Tiny(nnx.Rngs(seed)), seed, tmp_path / f"seed={seed}") for seed in SEEDS]
    results = train_seeds(members, windows, spec(**kw), class_weights=weights, tensorboard=False)
    return members, results


def test_a_stack_equals_separate_runs_and_keeps_a_folder_per_seed(tmp_path, task):
    windows, weights = task
    members, results = _stack(tmp_path / "stack", windows, weights)
    for member, result in zip(members, results, strict=True):
        alone = Tiny(nnx.Rngs(member.seed))
        single = train(alone, windows, spec(), seed=member.seed, class_weights=weights, tensorboard=False)
        for a, b in zip(params_of(member.model), params_of(alone), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), **TOLERANCE)
        assert result.last_metrics["loss"] == pytest.approx(single.last_metrics["loss"], rel=1e-5)
        # each seed keeps its own checkpoints and metrics, as a separate run does
        folder = member.run_dir
        assert Checkpointer(folder / "checkpoints").latest_step() == 10
        assert [r["step"] for r in read_metrics(folder) if "loss" in r] == [2, 4, 6, 8, 10]
    # different seeds learned different parameters (the stack does not share one)
    first, second = (np.concatenate([np.ravel(x) for x in params_of(m.model)]) for m in members)
    assert not np.allclose(first, second)


class Killed(Exception):
    """Raised by a periodic evaluation: the run stops there as a killed process would."""


def _killed_then_resumed(build, seeds, folder, windows, weights, train_spec, kill_at):
    """Trains a stack in ``folder`` until the evaluation at step ``kill_at`` kills it, then
    resumes it with fresh models; returns ``(members, results)`` of the resumed stack."""

    def crash(model, step):
        if step == kill_at:
            raise Killed
        return {}

    members = [SeedRun(build(s), s, folder / f"seed={s}", evaluate=crash) for s in seeds]
    with pytest.raises(Killed):
        train_seeds(members, windows, train_spec, class_weights=weights, tensorboard=False)
    members = [SeedRun(build(s), s, folder / f"seed={s}") for s in seeds]
    return members, train_seeds(members, windows, train_spec, class_weights=weights, tensorboard=False)


def _assert_equal_parameters(first, second):
    for a_member, b_member in zip(first, second, strict=True):
        for a, b in zip(params_of(a_member.model), params_of(b_member.model), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_a_resumed_stack_resumes_every_seed_to_the_uninterrupted_parameters(tmp_path, task):
    windows, weights = task
    straight, _ = _stack(tmp_path / "a", windows, weights)
    members, results = _killed_then_resumed(lambda s: Tiny(nnx.Rngs(s)), SEEDS, tmp_path / "b", windows, weights,
                                            spec(eval_every=7), kill_at=7)  # after the checkpoint at step 6
    assert [r.resumed_from for r in results] == [6, 6]
    _assert_equal_parameters(straight, members)


def test_a_non_finite_seed_stops_the_stack_naming_it(tmp_path, task):
    windows, weights = task
    members = [SeedRun(Tiny(nnx.Rngs(s)), s, tmp_path / f"seed={s}") for s in SEEDS]
    broken = members[1].model.w.kernel
    broken[...] = np.full(broken.shape, np.nan, np.float32)  # only seed 4 turns non-finite
    with pytest.raises(NonFiniteLossError, match=r"step 1 \(seed 4\): the loss became non-finite"):
        train_seeds(members, windows, spec(), class_weights=weights, tensorboard=False)


def test_seeds_of_different_structure_or_steps_are_refused(tmp_path, task):
    windows, weights = task
    graphs = [build_model("sparse_rnn", obs_shape=(5,), num_actions=3, rngs=nnx.Rngs(s), num_neurons=12,
                          topology="erdos_renyi", topology_options={"density": 0.3}, graph_seed=s) for s in (0, 1)]
    with pytest.raises(TrainSpecError, match="graph.seed"):
        train_seeds([SeedRun(m, s) for s, m in enumerate(graphs)], windows, spec(steps=2), class_weights=weights)
    with pytest.raises(TrainSpecError, match="must differ"):
        train_seeds([SeedRun(Tiny(nnx.Rngs(0)), 1), SeedRun(Tiny(nnx.Rngs(1)), 1)], windows, spec(steps=2),
                    class_weights=weights)
    # one seed's folder is ahead of the others: resuming them together would mix steps
    train(Tiny(nnx.Rngs(3)), windows, spec(steps=3), seed=3, class_weights=weights, run_dir=tmp_path / "seed=3",
          tensorboard=False)
    members = [SeedRun(Tiny(nnx.Rngs(s)), s, tmp_path / f"seed={s}") for s in SEEDS]
    with pytest.raises(TrainSpecError, match="seed 3: step 3, seed 4: step 0"):
        train_seeds(members, windows, spec(steps=6), class_weights=weights, tensorboard=False)


def _tnd_seeds(seeds, **graph):
    """TND as the table trains it (vector weights, leaky F), each seed with its own graph,
    padded to one program shape as `tnd.app.align_programs` pads a stack."""
    options = dict(num_neurons=12, topology="small_world", topology_options={"k": 4, "p": 0.3}, state_dim=4,
                   interaction="vector", encoder_features=8, **graph)
    build = lambda s, **kw: build_model("tnd", obs_shape=(5,), num_actions=3, rngs=nnx.Rngs(s), graph_seed=s,  # noqa: E731
                                        **options, **kw)
    common = ProgramShape.common([build(s).program_shape() for s in seeds])
    return (lambda s: build(s, program_shape=common)), build


@pytest.mark.slow
def test_a_stack_of_tnd_seeds_with_their_own_graphs_equals_separate_runs(task):
    """Graphs as data: seeds whose graphs differ (and differ in fan-in) train as one program,
    and each seed ends where it ends alone."""
    windows, weights = task
    seeds = (0, 1, 2)
    stacked_build, alone_build = _tnd_seeds(seeds)
    members = [SeedRun(stacked_build(s), s) for s in seeds]
    assert len({m.model.graph for m in members}) == 3  # three different graphs
    assert len({m.model.core.arrays.shape.fan_in for m in members}) == 1  # padded to one program
    train_seeds(members, windows, spec(steps=3), class_weights=weights, tensorboard=False)
    for member in members:
        alone = alone_build(member.seed)
        train(alone, windows, spec(steps=3), seed=member.seed, class_weights=weights, tensorboard=False)
        for a, b in zip(params_of(member.model), params_of(alone), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), **TOLERANCE)


@pytest.mark.slow
def test_a_killed_stack_of_tnd_seeds_resumes_to_the_uninterrupted_parameters(tmp_path, task):
    windows, weights = task
    seeds = (0, 1, 2)
    build, _ = _tnd_seeds(seeds)
    straight = [SeedRun(build(s), s, tmp_path / "a" / f"seed={s}") for s in seeds]
    train_seeds(straight, windows, spec(steps=7, eval_every=5), class_weights=weights, tensorboard=False)
    resumed, results = _killed_then_resumed(build, seeds, tmp_path / "b", windows, weights,
                                            spec(steps=7, eval_every=5), kill_at=5)  # after the checkpoint at step 3
    assert [r.resumed_from for r in results] == [3, 3, 3]
    _assert_equal_parameters(straight, resumed)


@pytest.mark.slow
def test_tnd_train_seeds_writes_one_run_folder_per_seed(tmp_path, monkeypatch, capsys, data_root):  # noqa: F811
    """TND with a graph per seed (small_world) trains its seeds as one program."""
    argv = [*TINY, f"data.root={data_root}", f"hydra.run.dir={tmp_path}", "model=tnd", "graph=small_world",
            "seeds=[2,5]"]
    assert call_main(train_entry.main, argv, monkeypatch) == 0
    out = capsys.readouterr().out
    for seed in (2, 5):
        folder = tmp_path / f"seed={seed}"
        summary = json.loads((folder / "summary.json").read_text())
        assert (summary["model"], summary["seed"], summary["train_steps"]) == ("tnd", seed, 4)
        assert summary["model_options"]["graph_seed"] == seed  # each seed its own graph
        assert "program_shape" not in summary["model_options"]
        assert f"tnd seed={seed} on pong" in out and (folder / "checkpoints" / "4").is_dir()
        described = json.loads((folder / "run.json").read_text())  # reads like a separate run
        assert f"seed={seed}" in described["overrides"] and described["spec"]["seed"] == seed
    assert "train as 2 programs" not in (tmp_path / "seed=2" / "train.log").read_text()  # one program


def test_tnd_train_seeds_bad_input_is_one_line_in_every_seed_folder(tmp_path, monkeypatch, capsys,
                                                                    data_root):  # noqa: F811
    seeds, message = "[1,1]", "seeds must list different seeds"
    argv = [*TINY, f"data.root={data_root}", f"hydra.run.dir={tmp_path}", "model=tnd", "graph=small_world",
            f"seeds={seeds}"]
    assert call_main(train_entry.main, argv, monkeypatch) == 1
    assert_one_readable_error(capsys, message)
    for seed in sorted(set(json.loads(seeds))):
        assert message in json.loads((tmp_path / f"seed={seed}" / "error.json").read_text())["error"]
