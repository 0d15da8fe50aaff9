"""A model's search space: named parameters -> Hydra overrides for one Optuna trial.

A space is a mapping from a config key to a distribution, as written in
``conf/tune/<model>.yaml``::

    train.lr:                 {type: float, low: 1.0e-3, high: 2.0e-2, log: true}
    graph:                    {type: categorical, choices: [layered_ncp, fully_connected]}
    model.options.state_dim:  {type: int, low: 2, high: 8}
    model.options.dynamics_options.tau_max:
                              {type: float, low: 2.0, high: 16.0, log: true, when: {model.options.dynamics: leaky}}

A key without a dot is a config *group* choice (``graph=fully_connected``); a dotted key
is a value (``++train.lr=0.004``, added if the node lacks it). ``when`` samples a parameter
only if earlier parameters took the given values, so options that belong to one choice
(leaky time constants) are never passed to another. Parameters are sampled in file order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

TYPES = ("float", "int", "categorical")


class SearchSpaceError(ValueError):
    """A malformed search space (unknown type, bad bounds, a condition on an unknown key)."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched config key and its distribution."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    when: tuple[tuple[str, Any], ...] = ()

    def suggest(self, trial) -> Any:
        """This parameter's value in ``trial`` (an ``optuna.Trial``)."""
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_categorical(self.key, list(self.choices))

    def override(self, value: Any) -> str:
        """The Hydra override that sets ``value`` (group choice or forced value)."""
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return f"{self.key}={text}" if "." not in self.key else f"++{self.key}={text}"


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The ordered parameters of one model's study."""

    params: tuple[Param, ...]

    @classmethod
    def from_dict(cls, space: Mapping[str, Mapping[str, Any]]) -> "SearchSpace":
        if not space:
            raise SearchSpaceError("The search space is empty: list at least one parameter under 'space:'.")
        params: list[Param] = []
        for key, spec in space.items():
            spec = dict(spec or {})
            kind = spec.pop("type", None)
            if kind not in TYPES:
                raise SearchSpaceError(f"{key}: type must be one of {', '.join(TYPES)}, got {kind!r}.")
            when = tuple((str(k), v) for k, v in dict(spec.pop("when", None) or {}).items())
            for cond, _ in when:
                if cond not in {p.key for p in params}:
                    raise SearchSpaceError(f"{key}: 'when' names {cond!r}, which is not an earlier parameter.")
            try:
                if kind == "categorical":
                    choices = tuple(spec.pop("choices"))
                    if not choices:
                        raise SearchSpaceError(f"{key}: a categorical parameter needs at least one choice.")
                    param = Param(key, kind, choices=choices, when=when)
                else:
                    low, high = float(spec.pop("low")), float(spec.pop("high"))
                    if not low <= high or (spec.get("log") and low <= 0):
                        raise SearchSpaceError(f"{key}: need low <= high (and low > 0 with log), got {low}, {high}.")
                    param = Param(key, kind, low=low, high=high, log=bool(spec.pop("log", False)),
                                  step=spec.pop("step", None), when=when)
            except KeyError as missing:
                raise SearchSpaceError(f"{key}: a {kind} parameter needs {missing}.") from None
            if spec:
                raise SearchSpaceError(f"{key}: unknown field(s) {', '.join(sorted(spec))}.")
            params.append(param)
        return cls(tuple(params))

    def sample(self, trial) -> dict[str, Any]:
        """The values of ``trial`` for every parameter whose ``when`` holds (file order)."""
        values: dict[str, Any] = {}
        for p in self.params:
            if all(values.get(k, _ABSENT) == v for k, v in p.when):
                values[p.key] = p.suggest(trial)
        return values

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """Hydra overrides for sampled ``values`` (keys of this space)."""
        by_key = {p.key: p for p in self.params}
        return [by_key[k].override(v) for k, v in values.items()]


_ABSENT = object()
