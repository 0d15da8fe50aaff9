"""F of the triple: local neuron dynamics ``h_i' = F_i(h_i, m_i, u_i)``.

Every neuron is updated from its own state ``h_i`` (d channels), its incoming message
``m_i`` and its input ``u_i`` (zero unless i is sensory) -- nothing else, which is what makes
the model *local*. Families (`DYNAMICS`):

* ``leaky``  leaky integrator with per-neuron time constants ``tau: [N, d]``:
             ``h' = h + (tanh(m W_m + h W_h + u + b) - h) / tau``. Learned as
             ``tau = 1/2 + exp(s)`` (`TAU_FLOOR`): the update stays a contraction towards its
             target for every ``tau > 1/2``, and ``d tau / d s = tau - 1/2`` keeps the gradient
             proportional to tau at every scale (a softplus floor at 1 froze taus near 1 and
             moved large ones by tiny relative steps). ``learn_tau=False`` keeps the initial
             taus fixed (state, not parameters).
* ``gated``  GRU-like per-neuron update (the Flax ``GRUCell`` equations with ``m + u`` as input).
* ``cfc``    CfC closed-form update (Hasani et al. 2022, ncps ``CfCCell`` default mode):
             ``z = act([m + u, h] W_bb)``, ``g = sigmoid(z W_a * t + z W_b)``,
             ``h' = tanh(z W_1) * (1 - g) + g * tanh(z W_2)`` with time step t = 1.

Parameter sharing (`SHARING`): ``shared`` (one parameter set for all neurons), ``per_neuron``
(heterogeneous: N sets) or ``per_type`` (one set per ``graph.neuron_types`` value). All
weights carry a leading group axis G in {1, N, num_types}; a static ``[N]`` group index maps
neurons to groups (data: the neuron types come from the graph's arrays). States are
neuron-major rows ``[N, d * B]`` (`tnd.layout`); the per-neuron channel maps are batched
matmuls ``[N, o, i] x [N, i, B]`` (`tnd.layout.channel_map`).

Like the interaction, a dynamics function splits into `prepare(batch)` (the loop-invariant
per-neuron parameters: group gathers, fused weight matrices, time constants -- computed once
per sequence, outside the time scan) and `apply(prepared, h, m, u)` (the per-round update);
calling the module on batch-major ``[B, N, d]`` arrays does both.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.graph.arrays import GraphArrays
from tnd.layout import ChannelWeights, channel_map, channels, from_rows, per_neuron_rows, to_rows
from tnd.registry import Registry, check_options, keyword_options

SHARING = ("shared", "per_neuron", "per_type")


class DynamicsError(ValueError):
    """An invalid dynamics option."""


def num_groups(arrays: GraphArrays, sharing: str) -> int:
    """How many parameter sets the sharing mode holds: 1, N or the number of neuron types."""
    if sharing not in SHARING:
        raise DynamicsError(f"Unknown sharing '{sharing}'. Valid values: {', '.join(SHARING)}.")
    return {"shared": 1, "per_neuron": arrays.num_neurons, "per_type": arrays.num_types}[sharing]


_DYNAMICS: Registry[type[LocalDynamics]] = Registry(
    "dynamics", DynamicsError, listed="Valid values", sort_names=False, register_name="register_dynamics",
    accepts=(lambda cls: isinstance(cls, type) and issubclass(cls, LocalDynamics), "a LocalDynamics subclass"),
)
PART_ARGUMENTS = ("rngs", "sharing")  # what make_dynamics passes every dynamics besides its options


def register_dynamics(kind: str):
    """Class decorator: registers a `LocalDynamics` subclass as ``dynamics=kind``."""
    return _DYNAMICS.register(kind)


def dynamics_names() -> tuple[str, ...]:
    """The registered dynamics families, built-ins first."""
    return tuple(_DYNAMICS.names())


class LocalDynamics(nnx.Module):
    """Base: grouped parameters and the per-neuron channel maps."""

    kind = "base"

    def __init__(self, arrays: GraphArrays, state_dim: int, *, sharing: str = "shared"):
        self.arrays = arrays
        self.state_dim = state_dim
        self.sharing = sharing
        self.num_groups = num_groups(arrays, sharing)

    def _param(self, rngs, shape, init=None, scale=None) -> nnx.Param:
        """A parameter ``[G, *shape]`` (lecun-normal over ``shape[0]`` inputs, or zeros)."""
        if init == "zeros":
            return nnx.Param(jnp.zeros((self.num_groups,) + shape))
        std = scale if scale is not None else 1.0 / math.sqrt(shape[0])
        return nnx.Param(std * jax.random.normal(rngs.params(), (self.num_groups,) + shape))

    def per_neuron(self, p: nnx.Param | jax.Array) -> jax.Array:
        """Parameter ``[G, ...]`` -> what each neuron uses: ``[1, ...]`` if shared else ``[N, ...]``."""
        value = p[...] if isinstance(p, nnx.Variable) else p
        if self.sharing == "per_type":
            return value[self.arrays.array("neuron_types")]
        return value

    def channel_weights(self, *matrices: nnx.Param, transposed: bool = False) -> jax.Array | ChannelWeights:
        """Input-major ``[G, i, o]`` matrices (stacked along i) -> per-neuron ``[N, o, sum i]`` for
        `channel_map` (with ``transposed``: `ChannelWeights`, for a fast reverse mode)."""
        w = jnp.concatenate([m[...] for m in matrices], axis=1)
        w_t = jnp.broadcast_to(self.per_neuron(w), (self.arrays.num_neurons,) + w.shape[1:])
        w = jnp.swapaxes(w_t, 1, 2)
        return ChannelWeights(w, w_t) if transposed else w

    def bias_rows(self, b: nnx.Param, batch: int) -> jax.Array:
        """A bias ``[G, o]`` -> rows ``[N or 1, o * B]``."""
        return per_neuron_rows(self.per_neuron(b), batch)

    def prepare(self, batch: int, *, transposed: bool = False) -> dict[str, jax.Array]:
        """Loop-invariant per-neuron parameters for batch size B (compute once per sequence);
        ``transposed``: channel maps as `ChannelWeights` (training: reverse mode only)."""
        raise NotImplementedError

    def apply(self, prepared: dict[str, jax.Array], h: jax.Array, m: jax.Array, u: jax.Array) -> jax.Array:
        """One update ``h' = F(h, m, u)`` on neuron-major rows ``[N, d * B]``."""
        raise NotImplementedError

    def __call__(self, h: jax.Array, m: jax.Array, u: jax.Array) -> jax.Array:
        """Convenience: batch-major ``[B, N, d]`` arrays in and out."""
        batch = h.shape[0]
        return from_rows(self.apply(self.prepare(batch), to_rows(h), to_rows(m), to_rows(u)), batch)


TAU_FLOOR = 0.5  # leaky time constants stay above this: h' = h + (target - h) / tau contracts


class FixedTimeConstant(nnx.Variable):
    """Leaky log time constants kept fixed (``learn_tau=False``): state, never trained or counted."""


@register_dynamics("leaky")
class LeakyDynamics(LocalDynamics):
    kind = "leaky"

    def __init__(self, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs, sharing: str = "shared",
                 tau_min: float = 1.0, tau_max: float = 8.0, learn_tau: bool = True):
        super().__init__(arrays, state_dim, sharing=sharing)
        if not TAU_FLOOR < float(tau_min) <= float(tau_max):
            raise DynamicsError(
                f"Leaky time constants need {TAU_FLOOR} < tau_min <= tau_max, got tau_min={tau_min}, tau_max={tau_max}."
            )
        if not isinstance(learn_tau, (bool, np.bool_)):
            raise DynamicsError(f"learn_tau must be true or false, got {learn_tau!r}.")
        d = state_dim
        self.w_message = self._param(rngs, (d, d))
        self.w_self = self._param(rngs, (d, d), scale=0.5 / math.sqrt(d))
        self.b = self._param(rngs, (d,), init="zeros")
        tau = jax.random.uniform(rngs.params(), (arrays.num_neurons, d), minval=tau_min, maxval=tau_max)
        log_excess = jnp.log(tau - TAU_FLOOR)  # tau = TAU_FLOOR + exp(log_excess)
        self.tau_log_excess = nnx.Param(log_excess) if learn_tau else FixedTimeConstant(log_excess)

    def time_constants(self) -> jax.Array:
        """Per-neuron time constants ``tau: [N, d]`` (> `TAU_FLOOR` steps)."""
        return TAU_FLOOR + jnp.exp(self.tau_log_excess[...])

    def prepare(self, batch: int, *, transposed: bool = False):
        """``w``: ``[N, d, 2d]`` (messages, then self), ``b`` and ``inv_tau`` as rows."""
        return {
            "w": self.channel_weights(self.w_message, self.w_self, transposed=transposed),
            "b": self.bias_rows(self.b, batch),
            "inv_tau": per_neuron_rows(1.0 / self.time_constants(), batch),
        }

    def apply(self, prepared, h, m, u):
        target = jnp.tanh(channel_map(prepared["w"], jnp.concatenate([m, h], axis=1)) + u + prepared["b"])
        return h + (target - h) * prepared["inv_tau"]


@register_dynamics("gated")
class GatedDynamics(LocalDynamics):
    kind = "gated"

    def __init__(self, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs, sharing: str = "shared"):
        super().__init__(arrays, state_dim, sharing=sharing)
        d = state_dim
        self.w_input = self._param(rngs, (d, 3 * d))  # r, z, n from the input m + u
        self.w_hidden = self._param(rngs, (d, 3 * d))  # r, z, n from the state
        self.b_input = self._param(rngs, (3 * d,), init="zeros")
        self.b_hidden = self._param(rngs, (3 * d,), init="zeros")

    def prepare(self, batch: int, *, transposed: bool = False):
        return {
            "w_input": self.channel_weights(self.w_input, transposed=transposed),
            "b_input": self.bias_rows(self.b_input, batch),
            "w_hidden": self.channel_weights(self.w_hidden, transposed=transposed),
            "b_hidden": self.bias_rows(self.b_hidden, batch),
        }

    def apply(self, prepared, h, m, u):
        d, batch = self.state_dim, h.shape[1] // self.state_dim
        xi = channel_map(prepared["w_input"], m + u) + prepared["b_input"]
        xh = channel_map(prepared["w_hidden"], h) + prepared["b_hidden"]
        gate = lambda x, i: channels(x, i * d, (i + 1) * d, batch)  # noqa: E731
        r = jax.nn.sigmoid(gate(xi, 0) + gate(xh, 0))
        z = jax.nn.sigmoid(gate(xi, 1) + gate(xh, 1))
        n = jnp.tanh(gate(xi, 2) + r * gate(xh, 2))
        return (1.0 - z) * n + z * h


@register_dynamics("cfc")
class CfCDynamics(LocalDynamics):
    kind = "cfc"

    def __init__(self, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs, sharing: str = "shared",
                 backbone_units: int | None = None, timespan: float = 1.0):
        super().__init__(arrays, state_dim, sharing=sharing)
        d = state_dim
        self.units = int(backbone_units or max(8, 2 * d))
        self.timespan = float(timespan)
        self.w_backbone = self._param(rngs, (2 * d, self.units))
        self.b_backbone = self._param(rngs, (self.units,), init="zeros")
        self.w_heads = self._param(rngs, (self.units, 4 * d))  # ff1, ff2, time_a, time_b
        self.b_heads = self._param(rngs, (4 * d,), init="zeros")

    def prepare(self, batch: int, *, transposed: bool = False):
        return {
            "w_backbone": self.channel_weights(self.w_backbone, transposed=transposed),
            "b_backbone": self.bias_rows(self.b_backbone, batch),
            "w_heads": self.channel_weights(self.w_heads, transposed=transposed),
            "b_heads": self.bias_rows(self.b_heads, batch),
        }

    def apply(self, prepared, h, m, u):
        d, batch = self.state_dim, h.shape[1] // self.state_dim
        z = channel_map(prepared["w_backbone"], jnp.concatenate([m + u, h], axis=1)) + prepared["b_backbone"]
        z = 1.7159 * jnp.tanh(0.666 * z)  # lecun_tanh
        y = channel_map(prepared["w_heads"], z) + prepared["b_heads"]
        head = lambda i: channels(y, i * d, (i + 1) * d, batch)  # noqa: E731
        ff1, ff2 = jnp.tanh(head(0)), jnp.tanh(head(1))
        gate = jax.nn.sigmoid(head(2) * self.timespan + head(3))
        return ff1 * (1.0 - gate) + gate * ff2


def make_dynamics(kind: str, arrays: GraphArrays, state_dim: int, *, rngs: nnx.Rngs,
                  sharing: str = "shared", **options) -> LocalDynamics:
    """Builds dynamics ``kind`` (one of `dynamics_names()`) on the graph ``arrays`` with
    ``sharing`` (one of `SHARING`).

    Options: ``tau_min``/``tau_max`` (leaky, initial time-constant range), ``learn_tau``
    (leaky; False keeps the initial taus fixed), ``backbone_units``
    and ``timespan`` (cfc).
    """
    cls = _DYNAMICS.get(kind)
    if sharing not in SHARING:
        raise DynamicsError(f"Unknown sharing '{sharing}'. Valid values: {', '.join(SHARING)}.")
    check_options(f"Dynamics '{kind}'", options, keyword_options(cls, fixed=PART_ARGUMENTS), DynamicsError)
    try:
        return cls(arrays, state_dim, rngs=rngs, sharing=sharing, **options)
    except TypeError as err:
        raise DynamicsError(f"Bad option for dynamics '{kind}': {err}") from err
