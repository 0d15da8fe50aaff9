"""User plugins: Python modules imported before a run builds anything.

A plugin registers what the library does not ship -- a topology (``@register_topology``),
a model (``@register_model``), an env -- so the terminal can name it::

    tnd-train model=tnd graph.name=my_ring plugins=[my_topologies]

Modules are looked up on ``sys.path`` and, for modules the user names, in the current
directory (where the command was launched). The run's saved config keeps the list and the
checkpoint records where each module came from (`plugin_origins`).

**Consent.** Restoring a run folder (``tnd-eval``, ``tnd-render``, `restore_model`) never
imports code just because the folder's metadata names it: the user names the plugins again
(``tnd-eval RUN plugins=[my_topologies]``, ``restore_model(run, plugins=[...])``), and
otherwise gets one line saying which modules the run needs and where they came from. A
module the user names is always imported first, so a name that cannot be imported (or that
is a path, not a module name) is refused with the same line by every command.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path


class PluginError(ValueError):
    """A plugin module that cannot be imported, or one a run folder needs without consent."""


def is_module_name(name: str) -> bool:
    """Whether ``name`` is an absolute, dotted Python module name (``my_pkg.topologies``):
    no path, no relative ``..module``."""
    return all(part.isidentifier() for part in name.split("."))


def _names(modules: Iterable[str] | None) -> list[str]:
    """The plugin modules named in ``modules``; one `PluginError` for anything but module names."""
    names = list(modules or ())
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise PluginError(f"plugins must be module names (strings), got {name!r}.")
        if not is_module_name(name):
            raise PluginError(
                f"plugins=[{name}]: '{name}' is not a Python module name. Name the module as you would import it "
                "(my_topologies, my_pkg.topologies), not a path or a relative name: put its file in the directory "
                "you launch from or on PYTHONPATH."
            )
    return names


def _where(name: str, origins: Mapping[str, str]) -> str:
    return f" (the run imported it from {origins[name]})" if origins.get(name) else ""


def import_plugins(modules: Iterable[str] | None, origins: Mapping[str, str] | None = None) -> None:
    """Imports every module the user named in ``modules`` (dotted names), searching the
    current directory last; one readable error if one fails (naming ``origins[name]``,
    where a run imported it before, when known)."""
    names = _names(modules)
    if not names:
        return
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            folder = Path(origins[name]).parent if origins and origins.get(name) else None
            how = (f"run from {folder} or add it to PYTHONPATH (PYTHONPATH={folder})" if folder else
                   f"put {name.replace('.', '/')}.py in the directory you launch from or on PYTHONPATH")
            raise PluginError(
                f"Cannot import plugin module '{name}'{_where(name, origins or {})} ({exc}). To make it importable, "
                f"{how}, or fix the name in plugins=[...]."
            ) from None


def plugin_origins(modules: Iterable[str] | None) -> dict[str, str]:
    """``{module: file}`` of imported plugin modules (recorded with each checkpoint)."""
    return {name: str(getattr(sys.modules.get(name), "__file__", "") or "") for name in _names(modules)}


def import_run_plugins(needed: Iterable[str] | None, allowed: Iterable[str] | None,
                       origins: Mapping[str, str] | None = None, *, run_dir: str | Path = "the run") -> None:
    """Imports the plugins a saved run needs, but only those the user allowed by naming them."""
    needed, allowed = _names(needed), set(_names(allowed))
    missing = [name for name in needed if name not in allowed]
    if missing:
        listed = ", ".join(f"{name}{_where(name, origins or {})}" for name in missing)
        raise PluginError(
            f"{run_dir} was trained with plugin module(s) {listed}. Code named by a run folder is not imported "
            f"without your consent: if you trust them, name them (tnd-eval RUN plugins=[{','.join(needed)}], "
            f"tnd-render RUN --plugins {','.join(needed)}, restore_model(..., plugins=[...]) in Python)."
        )
    import_plugins(needed, origins)
