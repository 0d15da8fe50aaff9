"""User plugins: Python modules imported before a run builds anything.

A plugin registers what the library does not ship -- a topology (``@register_topology``),
a model (``@register_model``), an env -- so the terminal can name it::

    tnd-train model=tnd graph.name=my_ring plugins=[my_topologies]

Modules are looked up on ``sys.path`` and in the current directory (where the command was
launched), in that order. The run's saved config keeps the list, so ``tnd-eval`` and a
resumed run import the same plugins before rebuilding the model.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable


class PluginError(ValueError):
    """A plugin module that cannot be imported."""


def import_plugins(modules: Iterable[str]) -> None:
    """Imports every module in ``modules`` (dotted names); one readable error if one fails."""
    modules = list(modules or ())
    if not modules:
        return
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    for name in modules:
        if not isinstance(name, str) or not name.strip():
            raise PluginError(f"plugins must be module names (strings), got {name!r}.")
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise PluginError(
                f"Cannot import plugin module '{name}' ({exc}). Put {name.replace('.', '/')}.py in the "
                f"directory you launch from or on PYTHONPATH, or fix the name in plugins=[...]."
            ) from None
