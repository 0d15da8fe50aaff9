"""`tnd-bench --suite profile`: where a model's training step spends its time, op by op.

Traces ``--profile-calls`` jit-compiled training steps (forward + backward of the
cross-entropy over ``[B, T]``, as `tnd-bench --suite models` times them) of TND and the LSTM
exactly as the table builds them (``experiment=pong_table``, or ``--models-table-overrides``
with the models suite), with ``jax.profiler`` (a Perfetto trace of the XLA
runtime's executed ops, "thunks"), and sums the ops' time by kind:

* ``matmul``     dots and the fusions the CPU backend hands to its matmul library (XNNPACK)
* ``transpose``  layout copies
* ``other``      elementwise fusions, reductions, slices, loop bookkeeping

Rows: per model, milliseconds per step and ops per time step (``T`` iterations of the
scan, forward and backward together) for each kind; the ``top`` rows list the costliest
single ops. On CPU, a step made of many small ops is bound by their count (about 10 µs
each here), not by their arithmetic.

    tnd-bench --suite profile
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import tempfile
from collections.abc import Iterator

KINDS = ("matmul", "transpose", "other")
RUNTIME_EVENTS = ("ThunkExecutor", "PjitFunction", "block_until_ready", "$")  # not ops


def add_arguments(group) -> None:
    group.add_argument("--profile-models", default="tnd,lstm", help="comma-separated models, built as the table builds them")
    group.add_argument("--profile-batch", type=int, default=32, help="training batch B")
    group.add_argument("--profile-seq-len", type=int, default=64, help="training window T")
    group.add_argument("--profile-calls", type=int, default=3, help="traced training steps (after two untraced)")
    group.add_argument("--profile-top", type=int, default=5, help="costliest single ops listed per model")


def op_kind(name: str) -> str:
    """The kind of an executed XLA op from its name."""
    lowered = name.lower()
    if "dot" in lowered or "ynn" in lowered or "gemm" in lowered or "matmul" in lowered:
        return "matmul"
    if "transpose" in lowered or lowered.startswith("copy"):
        return "transpose"
    return "other"


def _op_times(call, calls: int) -> dict[str, tuple[float, int]]:
    """``{op name: (total µs, count)}`` over ``calls`` traced calls."""
    import jax

    for _ in range(2):
        jax.block_until_ready(call())
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            for _ in range(calls):
                jax.block_until_ready(call())
        with gzip.open(glob.glob(f"{folder}/**/perfetto_trace.json.gz", recursive=True)[-1]) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    totals: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])
    for event in events:
        name = event.get("name", "")
        if event.get("ph") != "X" or name.startswith(RUNTIME_EVENTS) or name.startswith(("while", "call")):
            continue
        totals[name][0] += float(event.get("dur", 0.0))
        totals[name][1] += 1
    return {name: (us, n) for name, (us, n) in totals.items()}


def run(args) -> Iterator[dict]:
    from experiments.bench.models import NUM_ACTIONS, table_model
    from experiments.bench.timing import training_call

    batch, seq_len, calls = args.profile_batch, args.profile_seq_len, args.profile_calls
    overrides = getattr(args, "models_table_overrides", "experiment=pong_table").split()
    for name in args.profile_models.split(","):
        model, _, count, obs_shape = table_model(overrides + [f"model={name.strip()}"])
        ops = _op_times(training_call(model, batch, seq_len, obs_shape, NUM_ACTIONS, reset_probability=0.01), calls)
        by_kind = {kind: [0.0, 0] for kind in KINDS}
        for op, (us, n) in ops.items():
            by_kind[op_kind(op)][0] += us
            by_kind[op_kind(op)][1] += n
        row = {"model": f"{name.strip()}@table", "parameters": count, "batch": batch, "seq_len": seq_len,
               "step_ms": sum(us for us, _ in by_kind.values()) / calls / 1e3,
               "ops_per_timestep": sum(n for _, n in by_kind.values()) / calls / seq_len}
        for kind, (us, n) in by_kind.items():
            row[f"{kind}_ms"] = us / calls / 1e3
            row[f"{kind}_ops_per_timestep"] = n / calls / seq_len
        yield row
        for op, (us, n) in sorted(ops.items(), key=lambda item: -item[1][0])[: args.profile_top]:
            yield {"model": f"{name.strip()}@table", "top_op": op, "kind": op_kind(op), "ms_per_step": us / calls / 1e3,
                   "runs_per_step": n / calls}
