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
neurons to groups. States are neuron-major ``[N, B, d]``.

Like the interaction, a dynamics function splits into `prepare()` (the loop-invariant
per-neuron parameters: group gathers, fused weight matrices, time constants -- computed once
per sequence, outside the time scan) and `apply(prepared, h, m, u)` (the per-step update);
calling the module does both.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnd.graph.neuron_graph import NeuronGraph

SHARING = ("shared", "per_neuron", "per_type")


class DynamicsError(ValueError):
    """An invalid dynamics option."""


def group_index(graph: NeuronGraph, sharing: str) -> np.ndarray:
    """Static ``[N]`` group id of each neuron for the sharing mode."""
    if sharing == "shared":
        return np.zeros(graph.num_neurons, np.int32)
    if sharing == "per_neuron":
        return np.arange(graph.num_neurons, dtype=np.int32)
    if sharing == "per_type":
        return graph.neuron_types.astype(np.int32)
    raise DynamicsError(f"Unknown sharing '{sharing}'. Valid values: {', '.join(SHARING)}.")


_DYNAMICS: dict[str, type] = {}


def register_dynamics(kind: str):
    """Class decorator: registers a `LocalDynamics` subclass as ``dynamics=kind``."""
    if not isinstance(kind, str) or not kind:
        raise DynamicsError(f"register_dynamics needs a non-empty name, got {kind!r}.")

    def decorator(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, LocalDynamics)):
            raise DynamicsError(f"register_dynamics('{kind}') needs a LocalDynamics subclass, got {cls!r}.")
        _DYNAMICS[kind] = cls
        return cls

    return decorator


def dynamics_names() -> tuple[str, ...]:
    """The registered dynamics families, built-ins first."""
    return tuple(_DYNAMICS)


class LocalDynamics(nnx.Module):
    """Base: grouped parameters and the per-neuron affine map ``x W_g + b_g``."""

    kind = "base"

    def __init__(self, graph: NeuronGraph, state_dim: int, *, sharing: str = "shared"):
        self.state_dim = state_dim
        self.sharing = sharing
        groups = group_index(graph, sharing)
        self._groups = tuple(groups.tolist())  # hashable static metadata
        self.num_groups = int(groups.max()) + 1

    def _param(self, rngs, shape, init=None, scale=None) -> nnx.Param:
        """A parameter ``[G, *shape]`` (lecun-normal over ``shape[0]`` inputs, or zeros)."""
        if init == "zeros":
            return nnx.Param(jnp.zeros((self.num_groups,) + shape))
        std = scale if scale is not None else 1.0 / math.sqrt(shape[0])
        return nnx.Param(std * jax.random.normal(rngs.params(), (self.num_groups,) + shape))

    def per_neuron(self, p: nnx.Param) -> jax.Array:
        """Parameter ``[G, ...]`` -> what neuron n uses: ``[1, ...]`` if shared else ``[N, ...]``."""
        value = p[...]
        return value if self.num_groups == 1 else value[np.asarray(self._groups)]

    @staticmethod
    def linear(x: jax.Array, w: jax.Array) -> jax.Array:
        """``x: [N, B, i]`` times per-neuron ``w: [N or 1, i, o]`` -> ``[N, B, o]``."""
        if w.shape[0] == 1:  # one shared matrix: a single [N*B, i] x [i, o] matmul
            return (x.reshape(-1, x.shape[-1]) @ w[0]).reshape(x.shape[:-1] + (w.shape[-1],))
        return jnp.einsum("nbi,nio->nbo", x, w)

    @staticmethod
    def bias(b: jax.Array) -> jax.Array:
        return b[:, None, :]

    def prepare(self) -> dict[str, jax.Array]:
        """Loop-invariant per-neuron parameters (compute once per sequence)."""
        raise NotImplementedError

    def apply(self, prepared: dict[str, jax.Array], h: jax.Array, m: jax.Array, u: jax.Array) -> jax.Array:
        """One update ``h' = F(h, m, u)`` on neuron-major ``[N, B, d]`` arrays."""
        raise NotImplementedError

    def __call__(self, h: jax.Array, m: jax.Array, u: jax.Array) -> jax.Array:
        return self.apply(self.prepare(), h, m, u)


TAU_FLOOR = 0.5  # leaky time constants stay above this: h' = h + (target - h) / tau contracts


class FixedTimeConstant(nnx.Variable):
    """Leaky log time constants kept fixed (``learn_tau=False``): state, never trained or counted."""


@register_dynamics("leaky")
class LeakyDynamics(LocalDynamics):
    kind = "leaky"

    def __init__(self, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs, sharing: str = "shared",
                 tau_min: float = 1.0, tau_max: float = 8.0, learn_tau: bool = True):
        super().__init__(graph, state_dim, sharing=sharing)
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
        tau = jax.random.uniform(rngs.params(), (graph.num_neurons, d), minval=tau_min, maxval=tau_max)
        log_excess = jnp.log(tau - TAU_FLOOR)  # tau = TAU_FLOOR + exp(log_excess)
        self.tau_log_excess = nnx.Param(log_excess) if learn_tau else FixedTimeConstant(log_excess)

    def time_constants(self) -> jax.Array:
        """Per-neuron time constants ``tau: [N, d]`` (> `TAU_FLOOR` steps)."""
        return TAU_FLOOR + jnp.exp(self.tau_log_excess[...])

    def prepare(self):
        weights = jnp.concatenate([self.w_message[...], self.w_self[...]], axis=1)  # [G, 2d, d]
        return {
            "w": weights if self.num_groups == 1 else weights[np.asarray(self._groups)],
            "b": self.bias(self.per_neuron(self.b)),
            "inv_tau": (1.0 / self.time_constants())[:, None, :],
        }

    def apply(self, prepared, h, m, u):
        pre = self.linear(jnp.concatenate([m, h], axis=-1), prepared["w"])
        target = jnp.tanh(pre + u + prepared["b"])
        return h + (target - h) * prepared["inv_tau"]


@register_dynamics("gated")
class GatedDynamics(LocalDynamics):
    kind = "gated"

    def __init__(self, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs, sharing: str = "shared"):
        super().__init__(graph, state_dim, sharing=sharing)
        d = state_dim
        self.w_input = self._param(rngs, (d, 3 * d))  # r, z, n from the input m + u
        self.w_hidden = self._param(rngs, (d, 3 * d))  # r, z, n from the state
        self.b_input = self._param(rngs, (3 * d,), init="zeros")
        self.b_hidden = self._param(rngs, (3 * d,), init="zeros")

    def prepare(self):
        return {
            "w_input": self.per_neuron(self.w_input), "b_input": self.bias(self.per_neuron(self.b_input)),
            "w_hidden": self.per_neuron(self.w_hidden), "b_hidden": self.bias(self.per_neuron(self.b_hidden)),
        }

    def apply(self, prepared, h, m, u):
        d = self.state_dim
        xi = self.linear(m + u, prepared["w_input"]) + prepared["b_input"]
        xh = self.linear(h, prepared["w_hidden"]) + prepared["b_hidden"]
        r = jax.nn.sigmoid(xi[..., :d] + xh[..., :d])
        z = jax.nn.sigmoid(xi[..., d:2 * d] + xh[..., d:2 * d])
        n = jnp.tanh(xi[..., 2 * d:] + r * xh[..., 2 * d:])
        return (1.0 - z) * n + z * h


@register_dynamics("cfc")
class CfCDynamics(LocalDynamics):
    kind = "cfc"

    def __init__(self, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs, sharing: str = "shared",
                 backbone_units: int | None = None, timespan: float = 1.0):
        super().__init__(graph, state_dim, sharing=sharing)
        d = state_dim
        self.units = int(backbone_units or max(8, 2 * d))
        self.timespan = float(timespan)
        self.w_backbone = self._param(rngs, (2 * d, self.units))
        self.b_backbone = self._param(rngs, (self.units,), init="zeros")
        self.w_heads = self._param(rngs, (self.units, 4 * d))  # ff1, ff2, time_a, time_b
        self.b_heads = self._param(rngs, (4 * d,), init="zeros")

    def prepare(self):
        return {
            "w_backbone": self.per_neuron(self.w_backbone), "b_backbone": self.bias(self.per_neuron(self.b_backbone)),
            "w_heads": self.per_neuron(self.w_heads), "b_heads": self.bias(self.per_neuron(self.b_heads)),
        }

    def apply(self, prepared, h, m, u):
        d = self.state_dim
        z = jnp.concatenate([m + u, h], axis=-1)
        z = 1.7159 * jnp.tanh(0.666 * (self.linear(z, prepared["w_backbone"]) + prepared["b_backbone"]))  # lecun_tanh
        y = self.linear(z, prepared["w_heads"]) + prepared["b_heads"]
        ff1, ff2 = jnp.tanh(y[..., :d]), jnp.tanh(y[..., d:2 * d])
        gate = jax.nn.sigmoid(y[..., 2 * d:3 * d] * self.timespan + y[..., 3 * d:])
        return ff1 * (1.0 - gate) + gate * ff2


def make_dynamics(kind: str, graph: NeuronGraph, state_dim: int, *, rngs: nnx.Rngs,
                  sharing: str = "shared", **options) -> LocalDynamics:
    """Builds dynamics ``kind`` (one of `dynamics_names()`) with ``sharing`` (one of `SHARING`).

    Options: ``tau_min``/``tau_max`` (leaky, initial time-constant range), ``learn_tau``
    (leaky; False keeps the initial taus fixed), ``backbone_units``
    and ``timespan`` (cfc).
    """
    if kind not in _DYNAMICS:
        raise DynamicsError(f"Unknown dynamics '{kind}'. Valid values: {', '.join(dynamics_names())}.")
    if sharing not in SHARING:
        raise DynamicsError(f"Unknown sharing '{sharing}'. Valid values: {', '.join(SHARING)}.")
    try:
        return _DYNAMICS[kind](graph, state_dim, rngs=rngs, sharing=sharing, **options)
    except TypeError as err:
        raise DynamicsError(f"Bad option for dynamics '{kind}': {err}") from err
