"""CfC (closed-form continuous-time, Hasani et al. 2022) in Flax NNX, number for number
what the reference PyTorch cells of ``ncps`` 1.0.1 compute (tests/test_cfc_parity.py).

`CfCCell` mirrors ``ncps.torch.CfCCell``. With ``z = [x_t, h_{t-1}]`` (input first) passed
through the backbone (``backbone_layers`` Linear+activation layers of ``backbone_units``;
none when ``backbone_layers == 0``):

* ``default``: ``h = tanh(ff1(z)) * (1 - s) + s * tanh(ff2(z))``, ``s = sigmoid(time_a(z) * ts + time_b(z))``
* ``no_gate``: ``h = tanh(ff1(z)) + s * tanh(ff2(z))``
* ``pure``:    ``h = -A * exp(-ts * (|w_tau| + |ff1(z)|)) * ff1(z) + A``

``ts`` is the elapsed time of the step (default 1.0): a scalar or ``[B]``/``[B, 1]``.
An optional ``sparsity_mask [in, hidden]`` (rows: the inputs of ff1, i.e. ``[x; h]`` when
there is no backbone; ``A[j, i] != 0`` lets input ``j`` reach unit ``i``) multiplies the ff1 and
ff2 kernels, exactly as ncps does; as in ncps, ``time_a``/``time_b`` stay dense.

`WiredCfCCell` mirrors ``ncps.torch.WiredCfCCell``: one masked `CfCCell` per layer of a layered
wiring (ncps NCP: inter -> command -> motor), each fed by the previous layer's new state,
with the state laid out layer by layer.

`CfC` is the harness model (registered as ``cfc``): encoder -> `CfCCell` -> head. Given a
neuron graph (``graph=`` or ``topology=``), it becomes the masked CfC on that graph: no
backbone, ``hidden_size`` = neurons, input reaching the sensory neurons only
(mask ``[[1 on sensory columns] * F; adjacency]``), and the head reading the motor neurons.

Differences from ncps, on purpose: weights are stored in the ``nnx.Linear`` layout
``[in, out]`` (ncps: ``[out, in]``), ``w_tau``/``A`` as ``[H]`` (ncps ``[1, H]``); dropout in
the backbone is not supported (only 0). ncps's sequence wrapper ``CfC`` squeezes per-step
time spans to ``[B]`` and so breaks for batch != hidden; `CfCCell` takes ``[B]`` correctly.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.graph import NeuronGraph
from tnd.models.base import SequenceModel, count_params
from tnd.models.encoders import make_io
from tnd.models.registry import register_model
from tnd.models.wiring import GraphMask, GraphOptions

MODES = ("default", "no_gate", "pure")


def lecun_tanh(x: jax.Array) -> jax.Array:
    """ncps's ``LeCun`` activation: ``1.7159 * tanh(0.666 x)``."""
    return 1.7159 * jnp.tanh(0.666 * x)


ACTIVATIONS = {
    "lecun_tanh": lecun_tanh,
    "silu": jax.nn.silu,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # torch.nn.GELU() is the exact erf form
}


def _torch_linear(in_features: int, out_features: int, rngs: nnx.Rngs) -> nnx.Linear:
    """``nnx.Linear`` initialised as ncps does: Xavier-uniform kernel, torch's default bias."""
    bound = 1.0 / np.sqrt(in_features)
    return nnx.Linear(
        in_features, out_features, rngs=rngs,
        kernel_init=nnx.initializers.glorot_uniform(),
        bias_init=lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound),
    )


class CfCCell(nnx.Module):
    """One CfC step, ``(h [B, H], x [B, I], ts) -> h_new [B, H]`` (see the module docstring)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        mode: str = "default",
        backbone_activation: str = "lecun_tanh",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_dropout: float = 0.0,
        sparsity_mask: np.ndarray | None = None,
        rngs: nnx.Rngs,
    ):
        if mode not in MODES:
            raise ValueError(f"Unknown CfC mode '{mode}', valid options are {list(MODES)}.")
        if backbone_activation not in ACTIVATIONS:
            raise ValueError(
                f"Unknown CfC backbone_activation '{backbone_activation}', valid: {sorted(ACTIVATIONS)}."
            )
        if backbone_dropout:
            raise ValueError("CfC: backbone_dropout > 0 is not supported (deterministic harness); pass 0.")
        if backbone_layers < 0 or (backbone_layers > 0 and backbone_units < 1):
            raise ValueError(
                f"CfC: need backbone_layers >= 0 and backbone_units >= 1, got {backbone_layers}, {backbone_units}."
            )
        self.input_size, self.hidden_size, self.mode = input_size, hidden_size, mode
        self.activation = backbone_activation
        sizes = [input_size + hidden_size] + [backbone_units] * backbone_layers
        self.backbone = nnx.List([_torch_linear(a, b, rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        cat = sizes[-1]
        self.ff1 = _torch_linear(cat, hidden_size, rngs)
        if mode == "pure":
            bound = np.sqrt(6.0 / (1 + hidden_size))  # xavier_uniform on ncps's [1, H] parameters
            self.w_tau = nnx.Param(jax.random.uniform(rngs.params(), (hidden_size,), jnp.float32, -bound, bound))
            self.A = nnx.Param(jax.random.uniform(rngs.params(), (hidden_size,), jnp.float32, -bound, bound))
        else:
            self.ff2 = _torch_linear(cat, hidden_size, rngs)
            self.time_a = _torch_linear(cat, hidden_size, rngs)
            self.time_b = _torch_linear(cat, hidden_size, rngs)
        if sparsity_mask is None:
            self.sparsity_mask = None
        else:
            mask = np.abs(np.asarray(sparsity_mask, np.float32))
            if mask.shape != (cat, hidden_size):
                raise ValueError(
                    f"CfC: sparsity_mask must have shape [{cat}, {hidden_size}] (inputs of ff1 x units), "
                    f"got {mask.shape}."
                )
            self.sparsity_mask = GraphMask(jnp.asarray(mask))
            self.masked_entries = int((mask == 0).sum())

    def effective_param_count(self) -> int:
        """Trainable scalars that are used: masked ff1/ff2 kernel entries left out."""
        masked = 0 if self.sparsity_mask is None else self.masked_entries * (1 if self.mode == "pure" else 2)
        return count_params(self) - masked

    def _masked(self, layer: nnx.Linear, z: jax.Array) -> jax.Array:
        if self.sparsity_mask is None:
            return layer(z)
        return z @ (layer.kernel[...] * self.sparsity_mask[...]) + layer.bias[...]

    def __call__(self, h: jax.Array, x: jax.Array, ts: float | jax.Array = 1.0) -> jax.Array:
        z = jnp.concatenate([x, h], axis=-1)
        act = ACTIVATIONS[self.activation]
        for layer in self.backbone:
            z = act(layer(z))
        ts = jnp.asarray(ts, z.dtype)
        if ts.ndim == 1:
            ts = ts[:, None]
        ff1 = self._masked(self.ff1, z)
        if self.mode == "pure":
            return -self.A[...] * jnp.exp(-ts * (jnp.abs(self.w_tau[...]) + jnp.abs(ff1))) * ff1 + self.A[...]
        ff1 = jnp.tanh(ff1)
        ff2 = jnp.tanh(self._masked(self.ff2, z))
        t_interp = jax.nn.sigmoid(self.time_a(z) * ts + self.time_b(z))
        if self.mode == "no_gate":
            return ff1 + t_interp * ff2
        return ff1 * (1.0 - t_interp) + t_interp * ff2


class WiredCfCCell(nnx.Module):
    """ncps's wired CfC: one masked `CfCCell` per layer of a layered wiring.

    Args:
      input_size: I, number of sensory inputs.
      layers: neuron ids of each layer, in order (ncps NCP: inter, command, motor).
      adjacency: ``[N, N]`` wiring among neurons (``A[j, i] != 0`` iff ``j -> i``; signs ignored).
      sensory_adjacency: ``[I, N]`` wiring from inputs to neurons.
    The state ``h [B, N]`` is laid out layer after layer (ncps's order); the output is the
    last layer's state.
    """

    def __init__(
        self,
        input_size: int,
        layers: Sequence[Sequence[int]],
        adjacency: np.ndarray,
        sensory_adjacency: np.ndarray,
        *,
        mode: str = "default",
        rngs: nnx.Rngs,
    ):
        adjacency, sensory_adjacency = np.asarray(adjacency), np.asarray(sensory_adjacency)
        cells, in_features = [], input_size
        for index, units in enumerate(layers):
            units = list(units)
            if index == 0:
                sparsity = sensory_adjacency[:, units]
            else:
                sparsity = adjacency[np.ix_(list(layers[index - 1]), units)]
            sparsity = np.concatenate([sparsity, np.ones((len(units), len(units)))], axis=0)
            cells.append(
                CfCCell(in_features, len(units), mode=mode, backbone_layers=0, backbone_units=0,
                        sparsity_mask=sparsity, rngs=rngs)
            )
            in_features = len(units)
        self.layers = nnx.List(cells)
        self.layer_sizes = tuple(len(list(u)) for u in layers)

    def effective_param_count(self) -> int:
        return sum(cell.effective_param_count() for cell in self.layers)

    def __call__(self, h: jax.Array, x: jax.Array, ts: float | jax.Array = 1.0) -> tuple[jax.Array, jax.Array]:
        """Returns ``(output [B, last layer], new state [B, N])``."""
        splits = np.cumsum(self.layer_sizes)[:-1].tolist()
        states, new, inputs = jnp.split(h, splits, axis=-1), [], x
        for cell, state in zip(self.layers, states):
            inputs = cell(state, inputs, ts)
            new.append(inputs)
        return inputs, jnp.concatenate(new, axis=-1)


class CfC(SequenceModel):
    """Encoder -> `CfCCell` -> head; on a graph, the masked CfC read out at motor neurons.

    Carry: ``h [B, H]``. ``timespan`` is the elapsed time per step (constant).
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        *,
        hidden_size: int,
        mode: str = "default",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_activation: str = "lecun_tanh",
        timespan: float = 1.0,
        graph: NeuronGraph | None = None,
        encoder_features: int = 32,
        rngs: nnx.Rngs,
    ):
        mask, self.motor = None, None
        if graph is not None:
            if backbone_layers:
                raise ValueError(
                    "cfc: a graph mask needs backbone_layers=0 (ncps applies the mask to ff1/ff2 "
                    "inputs, which must be [features; neurons]); pass backbone_layers=0."
                )
            hidden_size = graph.num_neurons
            inputs = np.zeros((encoder_features, hidden_size), np.float32)
            inputs[:, graph.sensory] = 1.0
            mask = np.concatenate([inputs, graph.adjacency(np.float32)], axis=0)
            self.motor = tuple(int(i) for i in graph.motor)
        self.hidden_size = hidden_size
        self.timespan = float(timespan)
        out = hidden_size if self.motor is None else len(self.motor)
        self.encoder, self.head = make_io(obs_shape, encoder_features, out, num_actions, rngs=rngs)
        self.cell = CfCCell(
            encoder_features, hidden_size, mode=mode, backbone_activation=backbone_activation,
            backbone_units=backbone_units, backbone_layers=backbone_layers, sparsity_mask=mask, rngs=rngs,
        )

    def effective_param_count(self) -> int:
        return count_params(self) - (count_params(self.cell) - self.cell.effective_param_count())

    def initial_state(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.hidden_size), jnp.float32)

    def core_step(self, carry: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = self.cell(carry, features, self.timespan)
        return h, (h if self.motor is None else h[:, np.asarray(self.motor)])


@register_model("cfc", width_option="hidden_size", graph="optional")
def build_cfc(
    *,
    obs_shape,
    num_actions,
    rngs: nnx.Rngs,
    hidden_size: int = 64,
    mode: str = "default",
    backbone_units: int = 128,
    backbone_layers: int | None = None,
    backbone_activation: str = "lecun_tanh",
    timespan: float = 1.0,
    encoder_features: int = 32,
    **graph_options,
) -> CfC:
    """Dense CfC by default (ncps defaults: 1 backbone layer of 128 lecun_tanh units).

    With ``topology`` (a `tnd.graph.build_topology` name; ``hidden_size`` = neurons) or
    ``graph`` (`GraphOptions`), the masked CfC on that graph; ``backbone_layers`` then defaults to 0.
    """
    wiring = GraphOptions.parse("cfc", graph_options)
    graph = None
    if wiring.given:
        graph = wiring.resolve("cfc", hidden_size if wiring.graph is None else None)
        hidden_size = graph.num_neurons
    if backbone_layers is None:
        backbone_layers = 0 if graph is not None else 1
    return CfC(
        obs_shape, num_actions, hidden_size=hidden_size, mode=mode, backbone_units=backbone_units,
        backbone_layers=backbone_layers, backbone_activation=backbone_activation, timespan=timespan,
        graph=graph, encoder_features=encoder_features, rngs=rngs,
    )
