"""Data parallel training over two (forced) CPU devices matches one device within float tolerance
(one seed, and seeds stacked in one program)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tnd.training.parallel import ParallelError, data_mesh

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, jax
    from flax import nnx
    sys.path.insert(0, {tests!r})
    from test_training import Tiny, memory_task, spec
    from tnd.data.windows import make_windows
    from tnd.training.logging import read_metrics
    from tnd.training.loop import SeedRun, train, train_seeds

    assert len(jax.local_devices()) == 2
    w = make_windows(memory_task(), 8, num_actions=3)
    params = lambda model: [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(nnx.state(model, nnx.Param))]
    out = {{}}
    for devices in (1, 2):
        run = {root!r} + f"/d{{devices}}"
        model = Tiny(nnx.Rngs(0))
        train(model, w, spec(steps=12, log_every=1, devices=devices), seed=3, class_weights=np.ones(3),
              run_dir=run, tensorboard=False)
        stack = [SeedRun(Tiny(nnx.Rngs(s)), s) for s in (3, 4)]  # seeds in one program, its batch split too
        train_seeds(stack, w, spec(steps=12, devices=devices), class_weights=np.ones(3), tensorboard=False)
        out[devices] = {{"loss": [r["loss"] for r in read_metrics(run)], "params": params(model),
                         "stack": [params(m.model) for m in stack]}}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_two_devices_follow_the_same_loss_curve_as_one(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=str(TESTS), root=str(tmp_path))],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    one, two = result["1"], result["2"]
    assert len(one["loss"]) == 12
    # the same batches, split over two devices: equal up to the order of float summation
    assert one["loss"] == pytest.approx(two["loss"], rel=1e-5, abs=1e-6)
    for a, b in zip(one["params"], two["params"], strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    for seed_one, seed_two in zip(one["stack"], two["stack"], strict=True):
        for a, b in zip(seed_one, seed_two, strict=True):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-5)


def test_a_batch_that_does_not_split_is_one_error():
    assert data_mesh(1, 7) is None  # one device: no mesh, the plain program
    with pytest.raises(ParallelError, match="this machine has 1 local device"):
        data_mesh(4, 8)
