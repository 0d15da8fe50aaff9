"""`tnd-bench --suite core`: TND training-step throughput over graph size, density, d and path.

For each configuration: a TND model (scalar interaction, leaky dynamics, Erdos-Renyi graph of
the given density, object observations ``(4,)``), one jit-compiled training step (forward +
backward of the cross-entropy over a ``[B, T]`` window), timed after a warm-up; the figure is
the median over ``--repeats``.

Rows: ``model, n_neurons, density, edges, fan_in, state_dim, path`` (requested),
``resolved_path`` (what ``auto`` chose), ``batch, seq_len, step_ms, timesteps_per_s``
(``B*T / step time``), ``edge_ops_per_s`` (edge-feature operations the path performs per
second: ``N^2 * B * d * T`` for dense, ``E * B * d * T`` for sparse, each counted once per
step, forward+backward time) and ``useful_edge_ops_per_s`` (``E * B * d * T`` for both),
``device``. The paths of one configuration are compiled first and then timed in turn,
round by round (``--repeats`` rounds), so machine drift hits them alike; a ``tnd/paths`` row
then gives ``auto_speedup_vs_dense``, ``sparse_speedup_vs_dense`` and
``sparse_op_rate_vs_dense`` (the sparse path's edge-feature operation rate over the dense
path's, E vs N^2 operations per step).

    tnd-bench --suite core                      # small subset, ~1-2 min
    tnd-bench --suite core --core-full --repeats 3 --json   # the full grid (several minutes)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import jax
from flax import nnx

from experiments.bench.timing import median_seconds, training_call
from tnd.graph import build_topology
from tnd.models.tnd_model import TNDModel

DEFAULT_CONFIGS = ((256, 0.05), (1024, 0.01), (1024, 0.25))
FULL_NEURONS = (64, 256, 1024, 4096)
FULL_DENSITIES = (0.01, 0.05, 0.25, 1.0)
PATHS = ("sparse", "dense", "auto")


def add_arguments(group) -> None:
    group.add_argument("--core-full", action="store_true",
                       help="full grid N x density x d x path (several minutes)")
    group.add_argument("--core-neurons", type=str, default=None, help="comma-separated N values (overrides)")
    group.add_argument("--core-densities", type=str, default=None, help="comma-separated densities (overrides)")
    group.add_argument("--core-state-dims", type=str, default=None, help="comma-separated d values")
    group.add_argument("--core-paths", type=str, default=",".join(PATHS), help="comma-separated paths")
    group.add_argument("--core-batch", type=int, default=16)
    group.add_argument("--core-seq-len", type=int, default=16)
    group.add_argument("--core-interaction", type=str, default="scalar")


def _skip(n: int, density: float, path: str) -> bool:
    """Combinations that do not fit this 2-core CPU's time budget."""
    return n >= 4096 and density >= 0.25


def _configs(args):
    """``(n, density, d, paths)`` groups: the paths of one configuration are timed together."""
    if args.core_neurons or args.core_densities:
        neurons = [int(v) for v in (args.core_neurons or "1024").split(",")]
        densities = [float(v) for v in (args.core_densities or "0.01").split(",")]
        grid = list(itertools.product(neurons, densities))
    elif args.core_full:
        grid = list(itertools.product(FULL_NEURONS, FULL_DENSITIES))
    else:
        grid = list(DEFAULT_CONFIGS)
    dims = [int(v) for v in (args.core_state_dims or ("4,16" if args.core_full else "4")).split(",")]
    paths = [p.strip() for p in args.core_paths.split(",")]
    for (n, density), d in itertools.product(grid, dims):
        kept = [path for path in paths if not _skip(n, density, path)]
        if kept:
            yield n, density, d, kept


def run(args) -> Iterator[dict]:
    device = jax.devices()[0].device_kind
    for n, density, d, paths in _configs(args):
        graph = build_topology("erdos_renyi", n, seed=0, density=density)
        big = n >= 4096
        batch = max(1, args.core_batch // 2) if big else args.core_batch
        seq_len = max(1, args.core_seq_len // 2) if big else args.core_seq_len
        models = {
            path: TNDModel(graph, obs_shape=(4,), num_actions=3, rngs=nnx.Rngs(0), state_dim=d,
                           interaction=args.core_interaction, path=path)
            for path in paths
        }
        seconds = median_seconds(
            {path: training_call(model, batch, seq_len, (4,), 3) for path, model in models.items()}, args.repeats
        )
        rows = {}
        for path, model in models.items():
            resolved = model.core.path
            per_step = batch * d * seq_len / seconds[path]
            done_edges = n * n if resolved == "dense" else graph.num_edges
            rows[path] = {
                "model": "tnd", "interaction": args.core_interaction, "n_neurons": n,
                "density": round(graph.density, 4), "edges": graph.num_edges,
                "fan_in": model.core.arrays.shape.fan_in, "state_dim": d, "path": path,
                "resolved_path": resolved, "batch": batch, "seq_len": seq_len,
                "step_ms": seconds[path] * 1e3, "timesteps_per_s": batch * seq_len / seconds[path],
                "edge_ops_per_s": done_edges * per_step,
                "useful_edge_ops_per_s": graph.num_edges * per_step, "device": device,
            }
            yield rows[path]
        if "dense" in rows and len(rows) > 1:
            yield _comparison(rows)


def _comparison(rows: dict[str, dict]) -> dict:
    """The issue's three figures for one configuration, from paths timed in the same round."""
    dense = rows["dense"]
    out = {"model": "tnd/paths", "n_neurons": dense["n_neurons"], "density": dense["density"],
           "state_dim": dense["state_dim"]}
    if "auto" in rows:
        out["auto_resolves_to"] = rows["auto"]["resolved_path"]
        out["auto_speedup_vs_dense"] = dense["step_ms"] / rows["auto"]["step_ms"]
    if "sparse" in rows:
        out["sparse_speedup_vs_dense"] = dense["step_ms"] / rows["sparse"]["step_ms"]
        out["sparse_op_rate_vs_dense"] = rows["sparse"]["edge_ops_per_s"] / dense["edge_ops_per_s"]
    return out
