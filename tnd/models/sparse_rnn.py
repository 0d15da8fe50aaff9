"""The sparse RNN baseline: a vanilla RNN whose recurrent matrix is masked by a `NeuronGraph`.

It uses the very graph object a TND model uses, with the same roles, so a table row can
compare the two on an identical topology and isolate neuron-wise dynamics from sparsity:

* input: the encoder features ``x_t [B, F]`` are projected onto the *sensory* neurons only
  (``u_t = x_t W_in``, ``W_in [F, S]``, scattered into ``[B, N]``);
* recurrence: ``h_t = tanh(u_t + h_{t-1} (W_h * A) + b)`` with ``A = graph.adjacency()``
  (``A[j, i] = 1`` iff edge ``j -> i``: rows are senders, the `nnx.Linear` kernel layout);
* readout: the action head reads the *motor* neurons ``h_t[:, motor]`` only.

Parameter counts. ``W_h`` is stored dense ``[N, N]`` (a dense masked matmul beats a
scatter-add at every density >= 5% on CPU, `tnd-bench --suite core`), so the *nominal* count (`count_params`,
every ``nnx.Param`` scalar) includes the ``N*N - E`` masked entries, which get zero gradient
and never influence the output. The *effective* count (`effective_param_count`: trainable
and used) leaves them out; budget sizing and the table use the effective count.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.graph import NeuronGraph
from tnd.models.base import SequenceModel, count_params
from tnd.models.encoders import make_io
from tnd.models.registry import register_model
from tnd.models.wiring import GraphMask, GraphOptions


class SparseRNN(SequenceModel):
    """Encoder -> sensory projection -> graph-masked tanh RNN -> motor read-out -> head.

    Carry: ``h [B, N]``.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        *,
        graph: NeuronGraph,
        encoder_features: int = 32,
        rngs: nnx.Rngs,
    ):
        n = graph.num_neurons
        self.num_neurons = n
        self.graph_name = graph.name
        self.sensory = tuple(int(i) for i in graph.sensory)
        self.motor = tuple(int(i) for i in graph.motor)
        self.num_edges = graph.num_edges
        self.encoder, self.head = make_io(obs_shape, encoder_features, len(self.motor), num_actions, rngs=rngs)
        self.input = nnx.Linear(encoder_features, len(self.sensory), use_bias=False, rngs=rngs)
        adjacency = graph.adjacency(np.float32)
        # Fan-in scaled normal init on the edges: each receiver's input variance ~ 1.
        fan_in = np.maximum(adjacency.sum(axis=0, keepdims=True), 1.0)
        weights = jax.random.normal(rngs.params(), (n, n), jnp.float32) / jnp.sqrt(fan_in)
        self.recurrent_kernel = nnx.Param(weights * adjacency)
        self.bias = nnx.Param(jnp.zeros((n,), jnp.float32))
        self.mask = GraphMask(jnp.asarray(adjacency))

    def effective_param_count(self) -> int:
        """Trainable scalars that can influence the output: masked non-edges left out."""
        return count_params(self) - (self.num_neurons**2 - self.num_edges)

    def initial_state(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.num_neurons), jnp.float32)

    def core_step(self, carry: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        drive = jnp.zeros_like(carry).at[:, np.asarray(self.sensory)].set(self.input(features))
        kernel = self.recurrent_kernel[...] * self.mask[...]
        h = jnp.tanh(drive + carry @ kernel + self.bias[...])
        return h, h[:, np.asarray(self.motor)]


@register_model("sparse_rnn", width_option="num_neurons", graph="always")
def build_sparse_rnn(
    *, obs_shape, num_actions, rngs: nnx.Rngs, num_neurons: int | None = None, encoder_features: int = 32,
    **graph_options,
) -> SparseRNN:
    """The same graph options (`GraphOptions`) as the ``tnd`` model, so equal options give an identical graph."""
    graph = GraphOptions.parse("sparse_rnn", graph_options).resolve("sparse_rnn", num_neurons)
    return SparseRNN(obs_shape, num_actions, graph=graph, encoder_features=encoder_features, rngs=rngs)
