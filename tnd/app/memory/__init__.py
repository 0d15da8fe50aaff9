"""Fail fast: the memory a run needs and the time its graph takes to build, from shapes alone.

`tnd.app.experiment.set_up` calls `check_resources` after the cheap checks and before
anything is built (graph, model, dataset, compiled step). A run that cannot fit is refused
with one line (`ResourceError`, a ``ValueError``: the entry points print it as one line)
naming the setting(s) that drive it, the estimate and the memory available::

    tnd-train: error: train.batch_size=100000000 needs about 8 TB of memory, 8 TB of it for one
    training step's activations (batch 100,000,000 × window 16 × 1,043 floats per step); this
    machine has 23 GB available and a run may plan on 80% of it (train.memory_fraction): lower
    train.batch_size.

    estimate = estimate_resources(spec, obs_shape, num_actions, options)   # no check, no arrays
    estimate.parts, estimate.total_bytes, estimate.build_seconds

How the estimate is computed (closed form from the settings, float32, nothing allocated):

* **Parameters and optimizer state**: the model's stored parameters (masked entries of the
  sparse RNN and the wired CfC included) x `PARAM_BYTES` (the parameters, their gradients,
  AdamW's two moments, and the step's new copies of all three) x the seeds of a stack. With
  ``param_budget`` the width is the one the budget search will find (the same closed-form
  counts, `predict_width`). The counts equal the built models' exactly (tested).
* **One training step's activations**: batch x window x the floats the backward pass keeps
  per sample and step (the window's inputs, the encoder, the core's per-step state and, for
  TND, its K rounds of ``[N, d]`` residuals; the Transformer's attention scores over
  ``attention window - 1 + train.window`` keys), plus per-window and per-step terms (TND's
  prepared weights, a dense interaction's ``[N, N]`` matrix), x `ACTIVATION_FACTOR` for the
  backward pass's temporaries, x the seeds, / the data-parallel devices.
* **The dataset**: ``data.num_episodes x env.options.max_steps`` steps (episodes never run
  longer) of observation, label and flags, held twice (the host's copy and the device's);
  a given ``data.path``: twice its files' size.
* **Building the graph** (graph-based models): the topology's edge count in closed form
  (`graph_size`; e.g. ``small_world``: N k, ``layered_ncp``: about 0.115 N^2 at density 0.5),
  its host memory while it is generated (`BUILD_BYTES_PER_EDGE`) and the seconds it takes
  (per-edge costs and breadth-first sweeps measured on a 2-core CPU). With ``param_budget``
  the budget search builds every width it tries (up to twice the predicted width), so
  their sum is bounded. A build over `MAX_BUILD_SECONDS` is refused before it starts. A
  budget beyond the search's largest width is left to the search, which refuses it itself.

The activation estimate was 0.93-1.32x the temporaries of XLA's memory analysis of the
compiled step (CPU) for every model kind, TND's dynamics, interactions and paths (a slow test
keeps it within 0.7-1.6x); the project's real configurations need 1-60 MB per seed, far
below any limit. TND's rounds (``inner_rounds``) need no bound of their own: the core scans
over them (compile time does not grow with K) and the activations grow linearly in K.

Available memory (`available_memory`): on an accelerator, its free memory
(``jax.local_devices()[0].memory_stats()``: ``bytes_limit - bytes_in_use``) for the
parameters, activations and the device's copy of the dataset, and the host's for the rest;
on a CPU all parts share the host's ``MemAvailable`` (``/proc/meminfo``, capped by a cgroup
limit when one is set; ``os.sysconf`` elsewhere). A run may plan on ``train.memory_fraction``
of it (null: `DEFAULT_MEMORY_FRACTION`, 0.8). A model without a formula here (a plugin's) is
estimated by its dataset alone, a plugin's topology at 4 edges per neuron: never refused for
what is not known.

The package, one job per module: `graphs` (a topology's size and build cost), `settings`
(`Run`: the settings the estimate reads), `models` (each model family's parameters and
activations, the budget search's width), `parts` (the memory parts of a run), `machine`
(the free memory of this machine) and `check` (`check_resources`, `check_games_fit`).
"""

from tnd.app.memory.check import (
    DEFAULT_MEMORY_FRACTION,
    ESTIMATE_ERRORS,
    MAX_BUILD_SECONDS,
    SEED_BYTES_PER_GAME,
    TALLY_BYTES_PER_FIELD,
    ResourceError,
    check_games_fit,
    check_resources,
    drivers,
    game_bytes,
    memory_fraction,
)
from tnd.app.memory.graphs import (
    BUILD_BYTES_PER_EDGE,
    DEFAULT_BUILD_BYTES_PER_EDGE,
    SECONDS_PER_EDGE,
    SECONDS_PER_SWEEP_ELEMENT,
    TOPOLOGY_DEFAULTS,
    GraphSize,
    graph_size,
)
from tnd.app.memory.machine import Available, available_memory, host_available_bytes, local_device_count
from tnd.app.memory.models import MODEL_SIZES, ModelSize, model_size, predict_width
from tnd.app.memory.parts import (
    ACTIVATION_FACTOR,
    FLOAT_BYTES,
    PARAM_BYTES,
    Estimate,
    Part,
    estimate,
    estimate_resources,
)
from tnd.app.memory.settings import Run, run_of

__all__ = [
    "ACTIVATION_FACTOR", "BUILD_BYTES_PER_EDGE", "DEFAULT_BUILD_BYTES_PER_EDGE", "DEFAULT_MEMORY_FRACTION",
    "ESTIMATE_ERRORS", "FLOAT_BYTES", "MAX_BUILD_SECONDS", "MODEL_SIZES", "PARAM_BYTES", "SECONDS_PER_EDGE",
    "SECONDS_PER_SWEEP_ELEMENT", "SEED_BYTES_PER_GAME", "TALLY_BYTES_PER_FIELD", "TOPOLOGY_DEFAULTS",
    "Available", "Estimate", "GraphSize", "ModelSize", "Part", "ResourceError", "Run",
    "available_memory", "check_games_fit", "check_resources", "drivers", "estimate", "estimate_resources",
    "game_bytes", "graph_size", "host_available_bytes", "local_device_count", "memory_fraction", "model_size",
    "predict_width", "run_of",
]
