"""Training windows: fixed-length slices of the concatenated episodes, kept on device.

A window of length ``T`` starting at step ``s`` covers steps ``[s, s + T)`` of the
concatenated `Demonstrations`. It may run across an episode boundary: ``resets[t]`` is
true where an episode starts inside the window (and at ``t = 0``, where the carry starts
from ``initial_state`` anyway), so the model's carry is reset exactly where the data says.

Nothing is copied per window: the dataset arrays live on the device once, and a batch is
gathered by index *inside* the jitted train step (`gather_windows`). Which windows form
batch ``k`` is a pure function of ``(seed, k)`` (`WindowSampler.indices`), so the data
iterator's position is just the step number: checkpointing it is trivial and a resumed run
sees exactly the batches an uninterrupted one would.

Class balancing by sampling (``class_balance="sample"``) draws windows with probability
proportional to the mean inverse frequency of their labels, so windows with rare actions
(the paddle moving) are seen more often.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from tnd.envs.demonstrations import Demonstrations


CLASS_BALANCE = ("none", "weight", "sample")  # how labels are balanced (see tnd.training.loss)


class WindowError(ValueError):
    """Windows cannot be cut from a dataset as requested."""


@dataclasses.dataclass(frozen=True)
class Windows:
    """Device-resident source of training windows.

    The arrays may hold room for more steps than the data has (``capacity`` of
    `make_windows`): a dataset that grows (DAgger's rounds) then keeps one shape, and the
    jitted step compiles once. Steps past the data and start offsets past ``num_windows``
    are padding that no window reaches.

    Attributes:
      observations: ``[C, *obs_shape]`` float32, on device (``C >= S``, the data's steps).
      actions: ``[C]`` int32 expert labels, on device.
      episode_start: ``[C]`` bool, true at the first step of each episode, on device.
      starts: ``[C - T + 1]`` int32 window start offsets; the first ``num_windows`` are the
        valid ones (``s + T <= S``).
      start_probs: ``[C - T + 1]`` float32 sampling probabilities (0 past ``num_windows``),
        or None for uniform sampling.
      length: window length ``T``.
      num_windows: ``W = S - T + 1``, the valid window starts.
    """

    observations: jax.Array
    actions: jax.Array
    episode_start: jax.Array
    starts: jax.Array
    start_probs: jax.Array | None
    length: int
    num_windows: int

    def arrays(self) -> dict[str, jax.Array]:
        """The pytree passed to the jitted step (arguments, not closed-over constants; the
        number of valid windows too, so data of any size up to the capacity share one program)."""
        out = {
            "observations": self.observations,
            "actions": self.actions,
            "episode_start": self.episode_start,
            "starts": self.starts,
            "num_windows": jnp.asarray(self.num_windows, jnp.int32),
        }
        if self.start_probs is not None:
            out["start_probs"] = self.start_probs
        return out


def label_frequencies(actions: np.ndarray, num_actions: int) -> np.ndarray:
    """Fraction of steps with each label, ``[A]`` (classes never seen get frequency 0)."""
    counts = np.bincount(np.asarray(actions, np.int64), minlength=num_actions)[:num_actions]
    return counts / max(1, counts.sum())


def make_windows(
    demos: Demonstrations,
    length: int,
    *,
    num_actions: int,
    class_balance: str = "none",
    capacity: int | None = None,
) -> Windows:
    """Cuts every length-``length`` window of ``demos`` and puts the arrays on device.

    ``capacity``: room for this many steps (None: the data's own), padded past the data, so
    that a later call with more data (up to ``capacity`` steps) gives arrays of the same
    shapes. The windows drawn are the same either way.
    Raises `WindowError` when ``length`` is not positive or longer than every episode, or
    ``capacity`` is below the data's steps.
    """
    if int(length) <= 0:
        raise WindowError(f"Window length must be positive, got train.window={length}.")
    lengths = demos.episode_lengths
    if demos.num_steps == 0 or lengths.size == 0:
        raise WindowError("The dataset holds no steps: collect at least one episode.")
    longest = int(lengths.max())
    if length > longest:
        raise WindowError(
            f"Window length {length} is longer than every episode (longest: {longest} steps, "
            f"{lengths.size} episodes). Use train.window <= {longest} or collect longer episodes."
        )
    num_steps = demos.num_steps
    room = num_steps if capacity is None else int(capacity)
    if room < num_steps:
        raise WindowError(f"capacity={capacity} is below the dataset's {num_steps} steps.")
    starts = np.arange(num_steps - length + 1, dtype=np.int32)
    episode_start = np.zeros(num_steps, bool)
    episode_start[np.asarray(demos.episode_starts, np.int64)] = True
    actions = np.asarray(demos.actions, np.int32)

    probs = None
    if class_balance == "sample":
        freq = label_frequencies(actions, num_actions)
        inv = np.where(freq > 0, 1.0 / np.maximum(freq, 1e-12), 0.0)
        step_weight = inv[actions]
        # Mean weight of each window via a cumulative sum (O(S), no per-window loop).
        csum = np.concatenate([[0.0], np.cumsum(step_weight)])
        window_weight = (csum[starts + length] - csum[starts]) / length
        probs = (window_weight / window_weight.sum()).astype(np.float32)
    elif class_balance not in CLASS_BALANCE:
        raise WindowError(f"Unknown class_balance '{class_balance}'. Valid choices: {', '.join(CLASS_BALANCE)}.")

    pad = room - num_steps  # steps of padding (and as many start offsets)
    return Windows(
        observations=jnp.asarray(_padded(np.asarray(demos.observations, np.float32), pad)),
        actions=jnp.asarray(_padded(actions, pad)),
        episode_start=jnp.asarray(_padded(episode_start, pad)),
        starts=jnp.asarray(_padded(starts, pad)),
        start_probs=None if probs is None else jnp.asarray(_padded(probs, pad)),
        length=int(length),
        num_windows=int(starts.shape[0]),
    )


def _padded(array: np.ndarray, pad: int) -> np.ndarray:
    """``array`` with ``pad`` zero entries appended along its first axis."""
    if pad == 0:
        return array
    return np.concatenate([array, np.zeros((pad, *array.shape[1:]), array.dtype)])


def sample_starts(arrays: dict[str, jax.Array], key: jax.Array, batch_size: int) -> jax.Array:
    """``[B]`` window start offsets drawn with ``key`` (uniform over the ``num_windows`` valid
    ones, or by ``start_probs``, which are 0 on the padding)."""
    if "start_probs" in arrays:
        idx = jax.random.choice(key, arrays["starts"].shape[0], (batch_size,), replace=True, p=arrays["start_probs"])
    else:
        idx = jax.random.randint(key, (batch_size,), 0, arrays["num_windows"])
    return arrays["starts"][idx]


def gather_windows(
    arrays: dict[str, jax.Array], starts: jax.Array, length: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Gathers a batch by index (jit-friendly, ``length`` static).

    Returns ``(x [B, T, *obs], labels [B, T] int32, resets [B, T] bool)``.
    """
    idx = starts[:, None] + jnp.arange(length)[None, :]
    x = arrays["observations"][idx]
    labels = arrays["actions"][idx]
    resets = arrays["episode_start"][idx].at[:, 0].set(True)
    return x, labels, resets


@dataclasses.dataclass
class WindowSampler:
    """Deterministic batch order: batch ``k`` depends only on ``(seed, k)``.

    The iterator position is `position` (the number of batches drawn); `state_dict` /
    `load_state_dict` save and restore it with a checkpoint.
    """

    seed: int
    batch_size: int
    position: int = 0

    def key(self, step: int) -> jax.Array:
        return jax.random.fold_in(jax.random.key(self.seed), step)

    def indices(self, windows: Windows, step: int) -> jax.Array:
        """The ``[B]`` window starts of batch ``step`` (outside jit; for inspection/tests)."""
        return sample_starts(windows.arrays(), self.key(step), self.batch_size)

    def state_dict(self) -> dict[str, int]:
        return {"seed": int(self.seed), "batch_size": int(self.batch_size), "position": int(self.position)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state["seed"]) != self.seed or int(state["batch_size"]) != self.batch_size:
            raise WindowError(
                f"Data iterator state was saved with seed={state['seed']}, batch_size="
                f"{state['batch_size']}; this run uses seed={self.seed}, batch_size={self.batch_size}."
            )
        self.position = int(state["position"])
