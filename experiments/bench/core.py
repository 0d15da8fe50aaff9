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
``device``.

    tnd-bench --suite core                      # small subset, ~1-2 min
    tnd-bench --suite core --core-full --repeats 3 --json   # the full grid (several minutes)
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import optax
from flax import nnx

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
    for (n, density), d, path in itertools.product(grid, dims, paths):
        if not _skip(n, density, path):
            yield n, density, d, path


def _time_train_step(model: TNDModel, batch: int, seq_len: int, repeats: int) -> float:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x = jax.random.normal(jax.random.key(0), (batch, seq_len, 4))
    labels = jax.random.randint(jax.random.key(1), (batch, seq_len), 0, 3)

    @jax.jit
    def train_step(params, rest, x, labels):
        def loss_fn(p):
            _, logits = nnx.merge(graphdef, p, rest)(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        return loss, grads

    jax.block_until_ready(train_step(params, rest, x, labels))  # compile + warm-up
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        jax.block_until_ready(train_step(params, rest, x, labels))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(args) -> Iterator[dict]:
    device = jax.devices()[0].device_kind
    for n, density, d, path in _configs(args):
        graph = build_topology("erdos_renyi", n, seed=0, density=density)
        big = n >= 4096
        batch = max(1, args.core_batch // 2) if big else args.core_batch
        seq_len = max(1, args.core_seq_len // 2) if big else args.core_seq_len
        model = TNDModel(graph, obs_shape=(4,), num_actions=3, rngs=nnx.Rngs(0), state_dim=d,
                         interaction=args.core_interaction, path=path)
        resolved = model.core.path
        seconds = _time_train_step(model, batch, seq_len, args.repeats)
        per_step = batch * d * seq_len / seconds
        done_edges = n * n if resolved == "dense" else graph.num_edges
        yield {
            "model": "tnd",
            "interaction": args.core_interaction,
            "n_neurons": n,
            "density": round(graph.density, 4),
            "edges": graph.num_edges,
            "fan_in": model.core.interaction.lists.fan_in,
            "state_dim": d,
            "path": path,
            "resolved_path": resolved,
            "batch": batch,
            "seq_len": seq_len,
            "step_ms": seconds * 1e3,
            "timesteps_per_s": batch * seq_len / seconds,
            "edge_ops_per_s": done_edges * per_step,
            "useful_edge_ops_per_s": graph.num_edges * per_step,
            "device": device,
        }
