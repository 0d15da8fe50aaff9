"""experiment=smoke end to end for every model (pong), once on Atari Pong, and a joblib multirun."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tnd.app.experiment import WALL_CLOCK_FIELDS, run_experiment

from train_helpers import CONF, TINY, compose_cfg, data_root  # noqa: F401

MODELS = ["tnd", "rnn", "sparse_rnn", "lstm", "cfc", "transformer"]


def smoke(tmp_path, data_root, *overrides):  # noqa: F811
    spec = OmegaConf.to_object(compose_cfg("tnd_train", [*TINY, f"data.root={data_root}", *overrides]))
    return run_experiment(spec, tmp_path)


@pytest.mark.parametrize("model", [m if m != "transformer" else pytest.param(m, marks=pytest.mark.slow) for m in MODELS])
def test_smoke_trains_evaluates_and_checkpoints_every_model(model, tmp_path, data_root):  # noqa: F811
    # the periodic evaluation (same code path for every model) is exercised once, with lstm
    periodic = "train.eval_every=2" if model == "lstm" else "train.eval_every=0"
    summary = smoke(tmp_path, data_root, f"model={model}", "graph=small_world", periodic)
    assert summary["model"] == model and summary["games"] == 1 and summary["num_params"] > 0
    assert 0.0 <= summary["catch_rate"] <= 1.0
    assert (tmp_path / "checkpoints" / "4").is_dir()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_catch_rate" in r for r in rows) == (model == "lstm")


def test_same_config_and_seed_give_the_same_summary(tmp_path, data_root):  # noqa: F811
    a = smoke(tmp_path / "a", data_root, "model=rnn", "train.eval_every=0")
    b = smoke(tmp_path / "b", data_root, "model=rnn", "train.eval_every=0")
    for key in WALL_CLOCK_FIELDS:
        a.pop(key), b.pop(key)
    assert a == b


@pytest.mark.parametrize("obs_mode", ["objects", pytest.param("pixels", marks=pytest.mark.slow)])
def test_smoke_on_atari_pong(obs_mode, tmp_path, data_root):  # noqa: F811
    """Both observation modes train end to end; pixels go through the conv encoder."""
    summary = smoke(tmp_path, data_root, "env=atari_pong", "model=lstm", "env.options.max_steps=60",
                    f"env.options.obs_mode={obs_mode}", "eval.num_envs=1", "data.num_envs=2")
    assert summary["env"] == "atari_pong" and summary["games"] == 1
    assert summary["dataset_steps"] > 0 and math.isfinite(summary["final_loss"])
    from tnd.app.restore import restore_model
    from tnd.models.encoders import ConvEncoder, MLPEncoder

    model, _, _ = restore_model(tmp_path)
    assert isinstance(model.encoder, ConvEncoder if obs_mode == "pixels" else MLPEncoder)


@pytest.mark.slow
def test_multirun_with_the_joblib_launcher(tmp_path, data_root):  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(Path(CONF).parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "-m", "hydra/launcher=local_parallel", "model=rnn,lstm",
         *TINY, "train.eval_every=0", f"data.root={data_root}", f"hydra.sweep.dir={tmp_path}",
         "hydra/job_logging=disabled"],
        capture_output=True, text=True, cwd=Path(CONF).parent, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = sorted(tmp_path.rglob("summary.json"))
    assert len(summaries) == 2
    assert {json.loads(p.read_text())["model"] for p in summaries} == {"rnn", "lstm"}
