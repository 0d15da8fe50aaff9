"""Process settings the trainer asks for: keep freed host memory for the next step, and keep
compiled programs on disk for the next run (`use_compilation_cache`).

glibc's malloc hands large freed blocks back to the kernel (``munmap``, heap trimming), so
every training step of a program whose temporaries are tens of MB (a scan's per-round
residuals: TND's at the table size are ~40 MB) faults all of those pages in again, and
XLA's worker threads each get an arena of their own that is trimmed separately. Measured
with `tnd-bench --suite models` (TND's table step, four processes each): 46-78 ms with
glibc's defaults or the thresholds alone, 41-44 ms with one arena and freed memory retained;
the LSTM's step, with few temporaries, moves within noise. The process then keeps its peak
heap, which a training process reuses at every step anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # <malloc.h>
RETAINED_BYTES = 1 << 30  # blocks up to this size come from the heap, which is never trimmed


@functools.cache
def retain_freed_memory() -> bool:
    """Asks glibc for one arena whose heap serves large blocks and is never trimmed (once per process).

    Returns whether the settings took effect (False where the C library is not glibc).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, RETAINED_BYTES), (M_TRIM_THRESHOLD, 2**31 - 1))
    return all(bool(mallopt(option, value)) for option, value in settings)


def use_compilation_cache(directory: str | os.PathLike | None) -> Path | None:
    """Turns on JAX's persistent compilation cache in ``directory`` (created if absent).

    A program that compiles to the same XLA module as one compiled before, in this process or
    another (DAgger's rounds, whose data keep one shape; a sweep's seeds of one model; a rerun),
    is then loaded from disk instead of compiled again, which takes ~10 s per program for TND
    and the Transformer at the table size. A cache the environment already names
    (``JAX_COMPILATION_CACHE_DIR``) is kept; None leaves JAX as it is. Returns the cache in use.
    """
    import jax

    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    if directory is None:
        return None
    path = Path(directory).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    return path
