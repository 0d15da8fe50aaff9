"""`tnd-bench --suite devices`: data-parallel training over 1 and 2 devices (``train.devices``).

One jit-compiled forward + backward of the cross-entropy (B = ``--devices-batch``, T =
``--devices-seq-len``) of TND and the LSTM exactly as the table builds them
(``--models-table-overrides``), with the batch split over a ``jax.sharding.Mesh`` of 1 and
of 2 devices and the parameters replicated (`tnd.training.parallel`, the trainer's own
sharding). Rows: timesteps/s per device count and the speed-up of 2 devices over 1.

With fewer than two local devices the suite reruns itself in a child process with
``XLA_FLAGS=--xla_force_host_platform_device_count=2``: two *CPU* devices that share this
machine's cores, so the figure there is the cost of the split (partitioning and the
gradient all-reduce), not a speed-up. On a machine with two accelerators the same rows
measure real devices.

    tnd-bench --suite devices
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

FORCED_DEVICES = 2


def add_arguments(group) -> None:
    group.add_argument("--devices-batch", type=int, default=32, help="training batch B (split over the devices)")
    group.add_argument("--devices-seq-len", type=int, default=64, help="training window T")
    group.add_argument("--devices-models", default="lstm,tnd", help="comma-separated models, built as the table builds them")


def _options(args) -> dict:
    return {"batch": args.devices_batch, "seq_len": args.devices_seq_len, "repeats": args.repeats,
            "models": args.devices_models, "overrides": getattr(args, "models_table_overrides", "experiment=pong_table")}


def measure(options: dict) -> Iterator[dict]:
    """Rows for the local devices (run where ``jax.local_devices()`` has at least two)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from experiments.bench.models import NUM_ACTIONS, table_model
    from experiments.bench.timing import cross_entropy_grads, median_seconds
    from tnd.training.parallel import batch_sharding, data_mesh, replicate

    batch, seq_len, kind = int(options["batch"]), int(options["seq_len"]), jax.local_devices()[0].platform
    for name in options["models"].split(","):
        model, _, count, obs_shape = table_model(options["overrides"].split() + [f"model={name.strip()}"])
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        kx, kl = jax.random.split(jax.random.key(0))
        x = jax.random.normal(kx, (batch, seq_len) + tuple(obs_shape))
        labels = jax.random.randint(kl, (batch, seq_len), 0, NUM_ACTIONS)
        resets = jnp.zeros((batch, seq_len), bool)

        step = jax.jit(cross_entropy_grads(graphdef))  # compiled once per sharding of its inputs
        calls = {}
        for devices in (1, 2):
            mesh = data_mesh(devices, batch)
            split = batch_sharding(mesh)
            args = replicate((params, rest), mesh) + tuple(
                a if split is None else jax.device_put(a, split) for a in (x, resets, labels))
            calls[devices] = (lambda args=args: step(*args))
        seconds = median_seconds(calls, int(options["repeats"]), warmup=2)
        for devices, s in seconds.items():
            yield {"model": f"{name.strip()}@table", "parameters": count, "devices": devices, "platform": kind,
                   "batch": batch, "train_timesteps_per_s": batch * seq_len / s,
                   "speedup_vs_1": seconds[1] / s}


def run(args) -> Iterator[dict]:
    import jax

    options = _options(args)
    if len(jax.local_devices()) >= 2:
        yield from measure(options)
        return
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={FORCED_DEVICES}",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-m", "experiments.bench.devices", json.dumps(options)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"The 2-device child process failed:\n{proc.stderr[-3000:]}")
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            yield {**json.loads(line), "forced_cpu_devices": True}


if __name__ == "__main__":  # the child: forced host devices are set before jax is imported
    for row in measure(json.loads(sys.argv[1])):
        print(json.dumps(row), flush=True)
