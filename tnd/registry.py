"""Named parts of one kind (topologies, interactions, dynamics, models, envs) and their options.

    TOPOLOGIES = Registry("topology", TopologyError, listed="Valid topologies")
    TOPOLOGIES.register("ring", build_ring)          # or @TOPOLOGIES.register("ring")
    TOPOLOGIES.get("rnig")   # TopologyError: Unknown topology 'rnig' (did you mean 'ring'?). Valid topologies: ring.
    "ring" in TOPOLOGIES, TOPOLOGIES.names()

One `Registry` serves every kind: a later registration under a name replaces the earlier
one; `get` raises the registry's own error class, naming the valid names and the closest
one to a typo. `check_options` is the one check of a part's options dict (a topology's,
an interaction's, a model's, an env's), with `keyword_options` reading which options a
builder or a class accepts from its signature. Nothing here imports the rest of ``tnd``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Collection, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def closest_name(name: str, names: Iterable[str]) -> str | None:
    """The name most like ``name`` (a typo's likely meaning), if one is close (difflib)."""
    matches = difflib.get_close_matches(str(name), [str(n) for n in names], n=1, cutoff=0.6)
    return matches[0] if matches else None


class Registry(Generic[T]):
    """Names -> parts of one kind, with one readable error for an unknown name.

    Args:
      kind: what a part is called in messages (``"topology"``).
      error: the exception class `get` and `register` raise.
      listed: how the list of valid names is introduced (``"Valid topologies"``).
      hint: a sentence after the list (how to add a part), or "".
      sort_names: `names` sorted (True) or in registration order (built-ins first).
      register_name: the public function that registers a part, for messages
        (``"register_topology"``).
      accepts: ``(check, what)``: a test every registered part must pass and what it names
        (``(callable, "a builder function")``); None accepts anything.
    """

    def __init__(
        self, kind: str, error: type[Exception], *, listed: str, hint: str = "", sort_names: bool = True,
        register_name: str = "register", accepts: tuple[Callable[[Any], bool], str] | None = None,
    ):
        self.kind = kind
        self.error = error
        self.listed = listed
        self.hint = hint
        self.sort_names = sort_names
        self.register_name = register_name
        self.accepts = accepts
        self._parts: dict[str, T] = {}

    def register(self, name: str, part: T | None = None):
        """Registers ``part`` under ``name`` (returns it), or, without ``part``, a decorator that does."""
        if not isinstance(name, str) or not name:
            raise self.error(f"{self.register_name} needs a non-empty name, got {name!r}.")

        def decorator(item: T) -> T:
            if self.accepts is not None and not self.accepts[0](item):
                raise self.error(f"{self.register_name}('{name}') needs {self.accepts[1]}, got {item!r}.")
            self._parts[name] = item
            return item

        return decorator if part is None else decorator(part)

    def get(self, name: str) -> T:
        """The part registered as ``name``; an unknown name raises the registry's error."""
        try:
            return self._parts[name]
        except (KeyError, TypeError):
            raise self.error(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """``Unknown <kind> '<name>' (did you mean '<closest>'?). <listed>: <names>.<hint>``."""
        match = closest_name(name, self._parts) if isinstance(name, str) else None
        mean = f" (did you mean '{match}'?)" if match else ""
        hint = f" {self.hint}" if self.hint else ""
        return f"Unknown {self.kind} '{name}'{mean}. {self.listed}: {', '.join(self.names())}.{hint}"

    def names(self) -> list[str]:
        """The registered names (sorted, or in registration order: see ``sort_names``)."""
        return sorted(self._parts) if self.sort_names else list(self._parts)

    def pop(self, name: str, default: T | None = None) -> T | None:
        """Removes ``name`` (a test's or a plugin's part); returns its part, or ``default``."""
        return self._parts.pop(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._parts


def keyword_options(target: Callable, *, fixed: Collection[str] = (),
                    var_keyword: Collection[str] | None = None) -> set[str] | None:
    """The keyword-only options ``target`` (a function, or a class via its ``__init__``) accepts,
    without the ``fixed`` ones its caller always passes; None: any (it takes ``**options``).

    A class whose ``__init__`` passes ``**kwargs`` on to its base accepts the base's options
    too: the classes of its MRO are read until one names all of its own. ``var_keyword``
    names what a function's ``**options`` stand for, when the caller knows (a graph-based
    model's graph options).
    """
    functions = ([c.__init__ for c in target.__mro__ if "__init__" in vars(c)]
                 if isinstance(target, type) else [target])
    names: set[str] = set()
    for function in functions:
        params = inspect.signature(function).parameters.values()
        names |= {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return names - set(fixed)
        if var_keyword is not None:
            return (names | set(var_keyword)) - set(fixed)
    return None


def check_options(owner: str, options: Iterable[str], valid: Iterable[str] | None, error: type[Exception]) -> None:
    """Raises ``error`` naming the options ``owner`` does not have and the valid ones (sorted).

    ``owner`` starts the message (``"Topology 'ring'"``, ``"Model 'lstm'"``); ``valid`` None
    accepts every option (a builder that takes ``**options``).
    """
    if valid is None:
        return
    valid = sorted(set(valid))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise error(f"{owner} has no option {', '.join(map(repr, unknown))}. Valid options: {', '.join(valid) or '(none)'}.")
