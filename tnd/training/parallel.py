"""Data parallelism over local devices: the batch is split, parameters are replicated.

    mesh = data_mesh(spec.devices, batch_size)        # None on one device: nothing changes
    params = replicate(params, mesh)
    step_fn = make_train_step(..., batch_sharding=batch_sharding(mesh))

One `jax.sharding.Mesh` with a single ``"data"`` axis. The jitted step gathers its windows
as before and constrains them to be split along the batch axis; XLA's SPMD partitioner then
runs each device's share and all-reduces the gradients, so the update is the same (up to
float summation order) as on one device. With one device no mesh is made and the step is
the unchanged single-device program. The mesh spans this host's devices only (training
across hosts with `jax.distributed` is not wired).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


class ParallelError(ValueError):
    """A device count that cannot split the batch."""


def data_mesh(devices: int, batch_size: int) -> Mesh | None:
    """A 1-D mesh over ``devices`` local devices (0: all of them); None for one device."""
    available = jax.local_devices()
    count = len(available) if int(devices) == 0 else int(devices)
    if count < 1 or count > len(available):
        raise ParallelError(f"train.devices={devices}: this machine has {len(available)} local device(s); "
                            "use 0 (all) or a number up to that.")
    if count == 1:
        return None
    if batch_size % count:
        raise ParallelError(f"train.batch_size={batch_size} does not split over {count} devices; "
                            f"use a multiple of {count} or set train.devices.")
    return Mesh(np.asarray(available[:count]), (DATA_AXIS,))


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """``tree`` placed whole on every device of ``mesh``; without a mesh, on the default device.

    Without a mesh every array is placed there explicitly, fresh or restored alike: a state
    restored from a checkpoint arrives committed to its device, a fresh one does not, and jit
    would lower the same step to two programs (with and without placement annotations), so
    a resumed run (a DAgger round) would miss the compilation cache."""
    if mesh is None:
        return jax.device_put(tree, jax.devices()[0])
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def batch_sharding(mesh: Mesh | None) -> NamedSharding | None:
    """Arrays split along their first (batch) axis over ``mesh``; None without a mesh."""
    return None if mesh is None else NamedSharding(mesh, PartitionSpec(DATA_AXIS))
