"""This machine's free memory: the accelerator's (``memory_stats``) and the host's
(``MemAvailable``, capped by a cgroup limit), and how many devices share a batch.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Available:
    """Free memory: on the accelerator (None on a CPU) and on the host (None: unknown)."""

    device_bytes: float | None
    host_bytes: float | None
    device: str = "cpu"


def _read_int(path: str) -> int | None:
    """The integer in the file at ``path`` (None: unreadable or not a number, e.g. ``max``)."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def host_available_bytes() -> float | None:
    """The host's available memory: ``MemAvailable`` (Linux), capped by this process's
    cgroup limit when one is set; ``os.sysconf`` elsewhere; None when unknown."""
    available = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = float(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            names = ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES")
            pages = next(os.sysconf(n) for n in names if n in os.sysconf_names and os.sysconf(n) > 0)
            available = float(pages) * os.sysconf("SC_PAGE_SIZE")
        except (StopIteration, ValueError, OSError, AttributeError):
            return None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < (1 << 60):
            available = min(available, float(max(limit - usage, 0)))
            break
    return available


def available_memory() -> Available:
    """Free memory on this machine: the accelerator's (``memory_stats``) and the host's."""
    import jax

    device = jax.local_devices()[0]
    free = None
    if device.platform != "cpu":
        stats = getattr(device, "memory_stats", lambda: None)() or {}
        if "bytes_limit" in stats:
            free = float(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    name = getattr(device, "device_kind", device.platform) or device.platform
    return Available(free, host_available_bytes(), name)


def local_device_count(devices: int, batch_size: int) -> int:
    """How many devices share the batch (`tnd.training.parallel.data_mesh`'s rule; 1 when it would refuse)."""
    import jax

    available = len(jax.local_devices())
    count = available if int(devices) == 0 else int(devices)
    return count if 1 <= count <= available and batch_size % count == 0 else 1
