"""Parameter-budget sizing: pick a model's width so its parameter count meets a budget.

    model, count = build_for_budget("lstm", 20_000, obs_shape=(4,), num_actions=3)

The width is the model's registered integer option (``registry.width_option(name)``:
``hidden_size``, ``num_neurons``, ``d_model``, ...). Counts are *effective* counts
(`effective_param_count`): trainable parameters that can influence the output. For dense
models that is `count_params`; models with structural masks (sparse RNN, masked CfC, ...)
expose ``model.effective_param_count()`` to leave masked entries out. Candidate widths are
counted on abstract models (`nnx.eval_shape`: no arrays allocated); the search is a doubling
then bisection over widths (counts grow with width), then the closest neighbour wins.

A builder may carry ``builder.width_multiple(**options) -> int`` to restrict the search to
multiples of it (the Transformer needs ``d_model`` divisible by ``2 * num_heads``).
"""

from __future__ import annotations

from flax import nnx

from tnd.models.base import SequenceModel, count_params
from tnd.models.registry import build_model, get_model_builder, width_option


class BudgetError(ValueError):
    """No width of the model lands within the tolerance of the requested budget."""


def effective_param_count(model: nnx.Module) -> int:
    """Trainable-and-used scalars: ``model.effective_param_count()`` if defined, else `count_params`."""
    method = getattr(model, "effective_param_count", None)
    return int(method()) if callable(method) else count_params(model)


def param_count_at(name: str, width: int, *, obs_shape, num_actions, **options) -> int:
    """Effective parameter count of model ``name`` at ``width``, without allocating arrays."""
    option = width_option(name)
    abstract = nnx.eval_shape(
        lambda: build_model(
            name, obs_shape=obs_shape, num_actions=num_actions, rngs=nnx.Rngs(0), **{option: width}, **options
        )
    )
    return effective_param_count(abstract)


def width_for_budget(
    name: str, budget: int, *, obs_shape, num_actions, tolerance: float = 0.10, max_width: int = 1 << 16, **options
) -> tuple[int, int]:
    """Returns ``(width, count)`` with ``|count - budget| <= tolerance * budget``.

    Raises `UnknownModelError` for an unknown name and `BudgetError` when impossible.
    """
    builder = get_model_builder(name)
    option = width_option(name)
    if option in options:
        raise BudgetError(f"{name}: do not pass '{option}' together with a budget; the budget sets it.")
    if budget <= 0:
        raise BudgetError(f"{name}: the parameter budget must be a positive integer, got {budget}.")
    multiple = int(getattr(builder, "width_multiple", lambda **_: 1)(**options))
    cache: dict[int, int] = {}

    def count(k: int) -> int:  # count at width k * multiple
        if k not in cache:
            cache[k] = param_count_at(name, k * multiple, obs_shape=obs_shape, num_actions=num_actions, **options)
        return cache[k]

    lo = hi = _smallest_valid(name, option, multiple, count)
    while count(hi) < budget:
        if hi * multiple >= max_width:
            raise BudgetError(
                f"{name}: budget {budget} is out of reach: even {option}={hi * multiple} has only {count(hi)} parameters."
            )
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # invariant: count(lo) < budget <= count(hi), or lo == hi == smallest
        mid = (lo + hi) // 2
        if count(mid) < budget:
            lo = mid
        else:
            hi = mid
    best = min({lo, hi}, key=lambda k: abs(count(k) - budget))
    if abs(count(best) - budget) > tolerance * budget:
        first = min(cache)
        smallest = count(first)
        reason = (
            f"the smallest model ({option}={first * multiple}) already has {smallest} parameters"
            if smallest > budget
            else f"the nearest widths give {count(lo)} ({option}={lo * multiple}) and {count(hi)} "
            f"({option}={hi * multiple})"
        )
        raise BudgetError(
            f"{name}: no {option} lands within ±{tolerance:.0%} of the budget {budget}: {reason}. "
            "Choose a different budget, or change the fixed options (e.g. encoder_features)."
        )
    return best * multiple, count(best)


def _smallest_valid(name: str, option: str, multiple: int, count, tries: int = 64) -> int:
    """The smallest k whose width ``k * multiple`` builds (graph models need a few neurons)."""
    first_error = None
    for k in range(1, tries + 1):
        try:
            count(k)
            return k
        except ValueError as error:  # GraphError, TopologyError, a builder's own check
            first_error = first_error or error
    raise BudgetError(
        f"{name}: no {option} in {multiple}..{tries * multiple} builds with these options; "
        f"the first error was: {first_error}"
    ) from first_error


def build_for_budget(
    name: str,
    budget: int,
    *,
    obs_shape,
    num_actions: int,
    rngs_seed: int = 0,
    tolerance: float = 0.10,
    **options,
) -> tuple[SequenceModel, int]:
    """Builds model ``name`` with the width whose effective parameter count is nearest
    ``budget`` (within ``tolerance``); returns ``(model, effective_count)``."""
    obs_shape = tuple(obs_shape)
    width, _ = width_for_budget(
        name, budget, obs_shape=obs_shape, num_actions=num_actions, tolerance=tolerance, **options
    )
    model = build_model(
        name, obs_shape=obs_shape, num_actions=num_actions, rngs=nnx.Rngs(rngs_seed),
        **{width_option(name): width}, **options,
    )
    return model, effective_param_count(model)
