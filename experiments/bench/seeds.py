"""`tnd-bench --suite seeds`: what training seeds as one vmapped program would gain.

For each model as the table builds it (``experiment=pong_table``, or
``--models-table-overrides`` with the models suite) and each seed count S in
``--seeds-counts``: S models (seeds 0..S-1) take one jit-compiled training step (forward +
backward of the cross-entropy over ``[B, T]``, each seed its own batch) either

* ``separate``: S calls of the one-seed step, as S separate runs do, or
* ``stacked``:  one call of the step ``jax.vmap``-ed over the seeds' stacked parameters and
  batches (PureJaxRL's pattern),

and ``speedup = separate / stacked``. Seeds can share one program only when their models
have the same structure: TND's and the sparse RNN's graphs are drawn per seed by default,
so for them the suite builds every seed on one graph (``graph.seed=0``) and says so
(``one_graph``). The trainer does not stack seeds yet; these rows measure what it would gain.

    tnd-bench --suite seeds --seeds-counts 3,5
"""

from __future__ import annotations

from collections.abc import Iterator

PER_SEED_GRAPHS = ("tnd", "sparse_rnn")


def add_arguments(group) -> None:
    group.add_argument("--seeds-counts", default="3,5", help="comma-separated numbers of seeds S")
    group.add_argument("--seeds-models", default="lstm,rnn,cfc,transformer,sparse_rnn,tnd",
                       help="comma-separated models, built as the table builds them")
    group.add_argument("--seeds-batch", type=int, default=32, help="training batch B per seed")
    group.add_argument("--seeds-seq-len", type=int, default=64, help="training window T")


def run(args) -> Iterator[dict]:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from experiments.bench.models import NUM_ACTIONS, table_model
    from experiments.bench.timing import cross_entropy_grads, median_seconds

    overrides = getattr(args, "models_table_overrides", "experiment=pong_table").split()
    batch, seq_len = args.seeds_batch, args.seeds_seq_len
    for name in (n.strip() for n in args.seeds_models.split(",")):
        one_graph = name in PER_SEED_GRAPHS
        extra = ["graph.seed=0"] if one_graph else []
        for count in (int(c) for c in args.seeds_counts.split(",")):
            models = [table_model(overrides + [f"model={name}", f"seed={s}", *extra]) for s in range(count)]
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
            yield {"model": f"{name}@table", "seeds": count, "one_graph": one_graph,
                   "separate_ms": 1e3 * seconds["separate"], "stacked_ms": 1e3 * seconds["stacked"],
                   "speedup": seconds["separate"] / seconds["stacked"]}
