"""Ctrl-C that is never lost: `interrupts_recorded` remembers it, `check_interrupt` acts on it.

Python turns Ctrl-C (SIGINT) into a ``KeyboardInterrupt`` raised wherever the main thread
happens to be. Raised inside a garbage-collection callback or a ``__del__`` (JAX runs one
at every collection), it is only printed ("Exception ignored in ...") and the program goes
on as if nothing had happened. While `interrupts_recorded` is active, Ctrl-C still raises
``KeyboardInterrupt`` at once, and is also remembered (without that stray print), so the
next `check_interrupt` (the train loop calls it every step) raises it again.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

_interrupted = threading.Event()


def _on_sigint(signum, frame) -> None:
    _interrupted.set()
    raise KeyboardInterrupt


def _unraisable(previous):
    def hook(unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            return  # a swallowed Ctrl-C: remembered by _on_sigint, raised again by check_interrupt
        previous(unraisable)

    return hook


@contextlib.contextmanager
def interrupts_recorded() -> Iterator[None]:
    """While inside, Ctrl-C raises ``KeyboardInterrupt`` and is remembered for `check_interrupt`.

    Only the main thread can receive signals; elsewhere this does nothing. Leaving restores
    the previous handlers and forgets the interrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable(previous_hook)
    _interrupted.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
        _interrupted.clear()


def interrupted() -> bool:
    """Whether Ctrl-C was pressed inside the active `interrupts_recorded`."""
    return _interrupted.is_set()


def check_interrupt() -> None:
    """Raises ``KeyboardInterrupt`` if Ctrl-C was pressed (and perhaps swallowed) since
    `interrupts_recorded` began."""
    if _interrupted.is_set():
        raise KeyboardInterrupt
