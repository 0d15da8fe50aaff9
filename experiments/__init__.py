"""The command-line programs (console scripts in pyproject.toml).

Importing this package first makes Ctrl-C during a command's start-up (its imports take
seconds) end like Ctrl-C anywhere else: one line and exit status 130, no traceback, also
when the interrupt lands in a callback that Python would only print and go past, and no
crash: while jax initializes, the interrupt is held back until it is done. (Once a command
runs, `experiments.common.report_errors` takes over.)
"""

import functools
import importlib.abc
import importlib.machinery
import os
import signal
import sys
import threading
from pathlib import Path


def running_as_command() -> bool:
    """Whether this process is one of the console commands (``tnd-train``, ``python -m
    experiments.train``), not a test or notebook that imports them."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return Path(sys.argv[0]).name.startswith("tnd-") or str(getattr(spec, "name", "")).startswith("experiments.")


def _prog() -> str:
    """The command as typed: ``tnd-train``, or ``python -m experiments.train``."""
    name = Path(sys.argv[0]).name
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return name if name.startswith("tnd-") or spec is None else f"python -m {spec.name}"


def _interrupted() -> None:
    """One line and exit 130 at once: nothing has been written yet, and the interpreter's
    teardown can crash while library threads still run."""
    print(f"{_prog()}: interrupted", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)


def _on_uncaught(previous):
    def hook(exc_type, exc, tb) -> None:
        if not issubclass(exc_type, KeyboardInterrupt):
            return previous(exc_type, exc, tb)
        _interrupted()

    return hook


def _on_unraisable(previous):
    def hook(unraisable) -> None:  # a Ctrl-C raised inside a callback (a weakref's, the GC's)
        if unraisable.exc_type is None or not issubclass(unraisable.exc_type, KeyboardInterrupt):
            return previous(unraisable)
        _interrupted()

    return hook


def _interrupts_held(method):
    """``method`` with Ctrl-C held back until it returns, then acted on (one line, exit 130).

    A Python-level handler only records the interrupt, so no ``KeyboardInterrupt`` is raised
    in the middle of the import, whichever thread the kernel delivers SIGINT to (blocking the
    signal in the main thread alone let a thread started earlier take it and raise anyway).
    """

    @functools.wraps(method)
    def held(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return method(*args, **kwargs)
        caught: list[int] = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
        try:
            return method(*args, **kwargs)
        finally:
            signal.signal(signal.SIGINT, previous)
            if caught:
                _interrupted()

    return held


class _InterruptsHeldDuringImport(importlib.abc.MetaPathFinder):
    """Holds Ctrl-C back while the packages in `PACKAGES` initialize.

    ``KeyboardInterrupt`` in the middle of jaxlib's initialization crashes the process
    (SIGSEGV, no line: plain ``python -c 'import jax'`` does it too); held back until
    ``import jax`` is complete, the interrupt then ends the command with its one line.
    Finds nothing itself: it wraps the loader of the spec the path finder gives.
    """

    PACKAGES = ("jax", "jaxlib")

    def find_spec(self, name, path=None, target=None):
        if name not in self.PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader.exec_module = _interrupts_held(spec.loader.exec_module)
        return spec


sys.excepthook = _on_uncaught(sys.excepthook)
if running_as_command():
    sys.unraisablehook = _on_unraisable(sys.unraisablehook)
    if not any(isinstance(f, _InterruptsHeldDuringImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _InterruptsHeldDuringImport())
