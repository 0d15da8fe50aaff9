"""`tnd-bench --suite seeds`: what training seeds as one vmapped program would gain.

For each model as the table builds it (``experiment=pong_table``, or
``--models-table-overrides`` with the models suite) and each seed count S in
``--seeds-counts``: S models (seeds 0..S-1) take one jit-compiled training step (forward +
backward of the cross-entropy over ``[B, T]``, each seed its own batch) either

* ``separate``: S calls of the one-seed step, as S separate runs do, or
* ``stacked``:  one call of the step ``jax.vmap``-ed over the seeds' stacked parameters and
  batches (PureJaxRL's pattern),

and ``speedup = separate / stacked``. Seeds can share one program only when their models
have the same structure. TND holds its graph as data, so each seed keeps its own graph (of
one size: `tnd.app.align_programs` pads fan-in, fan-out and rounds to the largest), as the
table trains it. The sparse RNN builds its graph into its structure, so for it the suite
builds every seed on one graph (``graph.seed=0``) and says so (``one_graph``).

Then the trainer itself (``kind=trainer``, ``--seeds-train-steps`` updates on a synthetic
dataset, no run folder): S calls of `tnd.training.train`, each compiling its own step as a
separate run does, against one `tnd.training.train_seeds` of the S seeds (what
``tnd-train seeds=[...]`` runs). Each side reports its compile time (wall time of the
first step) and its time per step after that; ``table_speedup`` projects both to
``--seeds-table-steps`` updates (the table's 3,000): ``S·(compile + steps·step)`` over
``compile_stacked + steps·step_stacked``. Process start-up, data loading and the final
evaluation, which a stack also pays once instead of S times, are not counted.

    tnd-bench --suite seeds --seeds-counts 3,5
"""

from __future__ import annotations

from collections.abc import Iterator

STRUCTURAL_GRAPHS = ("sparse_rnn",)  # models whose graph is part of their structure


def add_arguments(group) -> None:
    group.add_argument("--seeds-counts", default="3,5", help="comma-separated numbers of seeds S")
    group.add_argument("--seeds-models", default="lstm,rnn,cfc,transformer,sparse_rnn,tnd",
                       help="comma-separated models, built as the table builds them")
    group.add_argument("--seeds-batch", type=int, default=32, help="training batch B per seed")
    group.add_argument("--seeds-seq-len", type=int, default=64, help="training window T")
    group.add_argument("--seeds-train-steps", type=int, default=40,
                       help="updates per trainer measurement (0 skips the trainer rows)")
    group.add_argument("--seeds-table-steps", type=int, default=3000, help="updates the projection assumes")


def run(args) -> Iterator[dict]:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from experiments.bench.models import NUM_ACTIONS, table_models
    from experiments.bench.timing import cross_entropy_grads, median_seconds

    overrides = getattr(args, "models_table_overrides", "experiment=pong_table").split()
    batch, seq_len = args.seeds_batch, args.seeds_seq_len
    for name in (n.strip() for n in args.seeds_models.split(",")):
        one_graph = name in STRUCTURAL_GRAPHS
        extra = ["graph.seed=0"] if one_graph else []
        for count in (int(c) for c in args.seeds_counts.split(",")):
            models = table_models(overrides + [f"model={name}", *extra], list(range(count)))
            splits = [nnx.split(m, nnx.Param, ...) for m, *_ in models]
            graphdef, obs_shape = splits[0][0], models[0][3]
            if any(g != graphdef for g, _, _ in splits):
                yield {"model": f"{name}@table", "seeds": count, "stackable": False,
                       "reason": "the seeds' models differ in structure"}
                continue
            keys = jax.random.split(jax.random.key(0), count)
            shape = (batch, seq_len) + tuple(obs_shape)
            xs = jax.vmap(lambda k, shape=shape: jax.random.normal(k, shape))(keys)
            labels = jax.vmap(lambda k: jax.random.randint(k, (batch, seq_len), 0, NUM_ACTIONS))(keys)
            resets = jnp.zeros((count, batch, seq_len), bool)

            grads = cross_entropy_grads(graphdef)
            single, stacked = jax.jit(grads), jax.jit(jax.vmap(grads))
            stack = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[(p, r) for _, p, r in splits])

            def separate(single=single, splits=splits, xs=xs, resets=resets, labels=labels):
                return [single(p, r, xs[s], resets[s], labels[s]) for s, (_, p, r) in enumerate(splits)]

            seconds = median_seconds({
                "separate": separate,
                "stacked": lambda stacked=stacked, stack=stack, xs=xs, resets=resets, labels=labels:
                    stacked(*stack, xs, resets, labels),
            }, args.repeats, warmup=2)
            yield {"model": f"{name}@table", "kind": "step", "seeds": count, "one_graph": one_graph,
                   "separate_ms": 1e3 * seconds["separate"], "stacked_ms": 1e3 * seconds["stacked"],
                   "speedup": seconds["separate"] / seconds["stacked"]}
            if args.seeds_train_steps > 0:
                yield _trainer_row(name, count, one_graph, [(m, s) for s, (m, *_) in enumerate(models)],
                                   [m for m, *_ in table_models(overrides + [f"model={name}", *extra],
                                                                list(range(count)))], obs_shape, args)


def _trainer_row(name: str, count: int, one_graph: bool, separate_models, stacked_models, obs_shape, args) -> dict:
    """S separate `train` calls against one `train_seeds` of the same S fresh models."""
    import numpy as np

    from experiments.bench.models import NUM_ACTIONS
    from tnd.data.windows import make_windows
    from tnd.envs.demonstrations import Demonstrations
    from tnd.training import SeedRun, TrainSpec, train, train_seeds

    steps, length = 4096, args.seeds_seq_len
    rng = np.random.default_rng(0)
    actions = rng.integers(0, NUM_ACTIONS, steps).astype(np.int32)
    zeros = np.zeros(steps)
    demos = Demonstrations(rng.normal(size=(steps, *obs_shape)).astype(np.float32), actions, actions,
                           zeros.astype(np.float32), zeros.astype(bool), zeros.astype(bool),
                           np.arange(0, steps, steps // 8), np.arange(8), {})
    windows = make_windows(demos, length, num_actions=NUM_ACTIONS)
    spec = TrainSpec(steps=args.seeds_train_steps, batch_size=args.seeds_batch, window=length, warmup_steps=0,
                     log_every=0, checkpoint_every=0, progress=False)
    weights = np.ones(NUM_ACTIONS, np.float32)

    def compile_and_step(result, seeds: int = 1) -> tuple[float, float]:
        """(seconds to the end of the first update, seconds per update after it) of one call."""
        step = args.seeds_batch * length / result.timesteps_per_s  # a stack's timesteps/s are per seed
        wall = result.train_seconds * seeds  # a stack's train_seconds are its wall time shared over its seeds
        return wall - (spec.steps - 1) * step, step

    alone = [compile_and_step(train(m, windows, spec, seed=s, class_weights=weights)) for m, s in separate_models]
    results = train_seeds([SeedRun(m, s) for s, m in enumerate(stacked_models)], windows, spec, class_weights=weights)
    compile_stacked, step_stacked = compile_and_step(results[0], count)
    compile_separate = sum(c for c, _ in alone)
    step_separate = sum(t for _, t in alone)
    table = args.seeds_table_steps
    return {
        "model": f"{name}@table", "kind": "trainer", "seeds": count, "one_graph": one_graph,
        "compile_separate_s": compile_separate, "compile_stacked_s": compile_stacked,
        "step_separate_ms": 1e3 * step_separate, "step_stacked_ms": 1e3 * step_stacked,
        "step_speedup": step_separate / step_stacked,
        "table_speedup": (compile_separate + table * step_separate) / (compile_stacked + table * step_stacked),
    }
