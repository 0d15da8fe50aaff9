"""The checks that refuse, before anything is built, a run that cannot fit in this machine's
memory or whose graph would take too long to build (`check_resources`), and an evaluation
whose per-game arrays would not fit (`check_games_fit`): one line (`ResourceError`) naming
the settings that drive the estimate, the estimate and the memory available.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tnd.app.memory.parts import Estimate, estimate
from tnd.app.memory.machine import Available, available_memory, host_available_bytes, local_device_count
from tnd.app.memory.settings import Run, is_int, run_of
from tnd.training.config import ExperimentSpec

if TYPE_CHECKING:
    from tnd.envs import EnvDefinition

DEFAULT_MEMORY_FRACTION = 0.8  # the share of the available memory a run may plan on (train.memory_fraction: null)
MAX_BUILD_SECONDS = 60.0  # a graph (or a budget search's graphs) estimated to take longer to build is refused

# What a closed form may raise on options the builders refuse themselves (with their own message).
ESTIMATE_ERRORS = (ArithmeticError, TypeError, ValueError, KeyError, AttributeError)


class ResourceError(ValueError):
    """A run that cannot fit in this machine's memory, or whose graph would take too long to build."""


def _bytes(x: float) -> str:
    """Bytes as text in the largest fitting unit: ``23 GB``, ``1.5 MB``."""
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= size:
            return f"{x / size:.2g} {unit}" if x / size < 10 else f"{x / size:,.0f} {unit}"
    return f"{x:.0f} bytes"


def _duration(seconds: float) -> str:
    """Seconds as text, in the largest unit of which there are at least two: ``40 s``, ``3 hours``."""
    for unit, size in (("years", 3.15e7), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:.0f} s"


def _settings(run: Run, keys: list[str]) -> str:
    """``a=1``, ``a=1 and b=2``, ``a=1, b=2 and c=3``: the settings ``keys`` with their values."""
    named = [f"{k}={run.values[k]}" for k in keys]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def _above_reference(run: Run) -> list[tuple[str, Any]]:
    """The settings above their ordinary value, each with that value."""
    out = []
    for key, value in run.values.items():
        if key not in run.references or value is None:
            continue
        ref = run.references[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ref is None or (number and isinstance(ref, (int, float)) and value > ref) or (is_int(value) and ref == "auto"):
            out.append((key, ref))
    return out


def drivers(run: Run, measure: Callable[[Run], float], limit: float) -> list[str]:
    """The settings that drive ``measure(run)`` over ``limit``: those whose ordinary value
    (`Run.references`) lowers it most, named until putting them back brings it under the
    limit (at most three)."""
    base = measure(run)
    gains = []
    for key, ref in _above_reference(run):
        try:
            lowered = measure(run.replace(key, ref))
        except ESTIMATE_ERRORS:
            continue
        if lowered < 0.9 * base:
            gains.append((lowered, key, ref))
    gains.sort(key=lambda g: g[0])
    chosen, trial = [], run
    for _, key, ref in gains:
        chosen.append(key)
        trial = trial.replace(key, ref)
        if measure(trial) <= limit or len(chosen) == 3:
            break
    return chosen


def memory_fraction(spec: ExperimentSpec) -> float:
    """``train.memory_fraction``, or `DEFAULT_MEMORY_FRACTION` when it is null."""
    value = getattr(spec.train, "memory_fraction", None)
    fraction = DEFAULT_MEMORY_FRACTION if value is None else float(value)
    if not (math.isfinite(fraction) and fraction > 0):
        raise ResourceError(
            f"train.memory_fraction must be a positive number (null: {DEFAULT_MEMORY_FRACTION}), got {value}."
        )
    return fraction


def check_resources(spec: ExperimentSpec, obs_shape, num_actions: int, options: Mapping[str, Any], *,
                    seeds: int = 1, env_config: Any = None, available: Available | None = None) -> Estimate | None:
    """Refuses (`ResourceError`, one line) a run whose graph would take over `MAX_BUILD_SECONDS`
    to build, or whose graph build or training would need more than ``train.memory_fraction``
    of the available memory (``available``: `available_memory` when None); returns the
    estimate otherwise (None: options the builders will refuse themselves, which no formula
    here can size). ``options``: the model's resolved options
    (`tnd.app.experiment.model_options`); ``seeds``: how many seeds train as one program."""
    fraction = memory_fraction(spec)
    available = available_memory() if available is None else available
    on_cpu = available.device_bytes is None
    devices = 1 if on_cpu else local_device_count(spec.train.devices, int(spec.train.batch_size))
    try:
        run = run_of(spec, obs_shape, num_actions, options, seeds=seeds, env_config=env_config, devices=devices)
        result = estimate(run)
    except ESTIMATE_ERRORS:  # options the builders will refuse with their own message (e.g. small_world k=0)
        return None
    plan = f"a run may plan on {fraction:.0%} of it (train.memory_fraction)"

    def refuse(keys: list[str], what: str) -> ResourceError:
        return ResourceError(f"{_settings(run, keys) + ': ' if keys else ''}{what}: lower "
                             f"{', '.join(keys) if keys else 'the model, batch or window size'}.")

    if result.build_seconds > MAX_BUILD_SECONDS:
        keys = drivers(run, lambda r: estimate(r).build_seconds, MAX_BUILD_SECONDS)
        raise refuse(keys, f"building {result.build_what} would take about {_duration(result.build_seconds)} and "
                           f"{_bytes(result.build_bytes)} of host memory, over the {MAX_BUILD_SECONDS:.0f} s a graph may "
                           "take (tnd.app.memory.MAX_BUILD_SECONDS)")
    host_limit = None if available.host_bytes is None else fraction * available.host_bytes
    if host_limit is not None and result.build_bytes > host_limit:
        keys = drivers(run, lambda r: estimate(r).build_bytes, host_limit)
        raise refuse(keys, f"building {result.build_what} needs about {_bytes(result.build_bytes)} of host memory; "
                           f"this machine has {_bytes(available.host_bytes)} available and {plan}")
    if on_cpu:
        checks = [(lambda e: e.total_bytes, host_limit, available.host_bytes, "memory",
                   "this machine has {} available", lambda p: p.bytes)]
    else:
        checks = [(lambda e: e.bytes_on(True), fraction * available.device_bytes, available.device_bytes,
                   f"{available.device} memory", f"this {available.device} has {{}} free", lambda p: p.device_bytes),
                  (lambda e: e.bytes_on(False), host_limit, available.host_bytes, "host memory",
                   "this machine has {} available", lambda p: p.host_bytes)]
    for share, limit, free, memory, has, part_bytes in checks:
        if limit is None or share(result) <= limit:
            continue
        keys = drivers(run, lambda r, share=share: share(estimate(r)), limit)
        top = max(result.parts, key=part_bytes)
        verb = "need" if len(keys) > 1 else "needs"
        raise ResourceError(
            f"{_settings(run, keys) + ' ' + verb if keys else 'This run needs'} about {_bytes(share(result))} of {memory}, "
            f"{_bytes(part_bytes(top))} of it for {top.what} ({top.formula}); {has.format(_bytes(free))} and {plan}: "
            f"lower {', '.join(keys) if keys else 'the model, batch or window size'}."
        )
    return result


# Host bytes per evaluated game besides the tally fields: its seed (uint32 state, int64 seed, int32 copy).
SEED_BYTES_PER_GAME = 16
# Host bytes per game and tally field: the int32 counts read back, their int64 tally, the concatenation.
TALLY_BYTES_PER_FIELD = 20


def game_bytes(env: EnvDefinition) -> int:
    """Host bytes one evaluated game needs until its metrics are pooled (seed and tally)."""
    return SEED_BYTES_PER_GAME + TALLY_BYTES_PER_FIELD * len(env.tally.field_names())


def check_games_fit(env: EnvDefinition, num_games: int, setting: str = "eval.num_games") -> None:
    """Refuses (`ResourceError`, one line naming ``setting`` and the estimate) an evaluation
    whose per-game arrays would take more than the share of the host's available memory a
    run may plan on (`tnd.app.memory`: ``DEFAULT_MEMORY_FRACTION`` of ``host_available_bytes``),
    before any of them is allocated. The games themselves are played in bounded batches
    (`tnd.envs.batched_games`), so only these per-game arrays grow with ``num_games``."""
    per_game, available = game_bytes(env), host_available_bytes()
    share = DEFAULT_MEMORY_FRACTION
    if not available or int(num_games) * per_game <= share * available:
        return
    raise ResourceError(
        f"{setting}={int(num_games):,} would need about {int(num_games) * per_game / 2**30:,.1f} GiB of memory "
        f"({per_game} bytes per game for its seed and tally), more than {share:.0%} of the "
        f"{available / 2**30:.1f} GiB available: set {setting} to at most {int(share * available) // per_game:,} "
        "(or evaluate in several runs)."
    )
