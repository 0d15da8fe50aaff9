"""The size of a built-in topology in closed form (`graph_size`): edges, padded fan-in, input ->
readout distance, neuron types, and the seconds and host memory its generator takes.

The build costs are measured per edge of each generator and per element of a breadth-first
sweep (the reachability checks) on a 2-core CPU; a topology without a formula (a plugin's)
has no size here (None).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

BUILD_BYTES_PER_EDGE = {"layered_ncp": 200.0}  # a Python set of edge tuples; networkx graphs: the default below
DEFAULT_BUILD_BYTES_PER_EDGE = 400.0
# Seconds per edge of each topology's generator (measured, 2-core CPU), and per element of a
# breadth-first sweep over the edges (the reachability checks: one sweep per BFS level).
SECONDS_PER_EDGE = {
    "layered_ncp": 7e-6, "small_world": 3e-6, "fully_connected": 1.6e-6, "erdos_renyi": 3.7e-6,
    "scale_free": 4.2e-6, "modular": 3.4e-6, "ring": 3e-6, "lattice": 4.3e-6,
}
SECONDS_PER_SWEEP_ELEMENT = 2e-9


@dataclasses.dataclass(frozen=True)
class GraphSize:
    """A topology's size in closed form: edges, padded fan-in, input -> readout distance
    (sensory -> motor), neuron types, and what generating it costs."""

    topology: str
    neurons: int
    edges: float
    sensory: int
    motor: int
    fan_in: float
    distance: int
    types: int
    build_seconds: float
    build_bytes: float


# The built-in topologies' size options with their defaults (those of tnd.graph.topologies' builders).
TOPOLOGY_DEFAULTS: dict[str, dict[str, Any]] = {
    "small_world": {"k": 4, "p": 0.1}, "scale_free": {"m": 2},
    "modular": {"blocks": 4, "p_in": 0.3, "p_out": 0.02}, "ring": {"k": 1}, "layered_ncp": {"density": 0.5},
}


def graph_size(topology: str, neurons: int, options: Mapping[str, Any] | None = None, *,
               num_sensory: int | None = None, num_motor: int | None = None) -> GraphSize | None:
    """The size of the built-in topology ``topology`` on ``neurons`` neurons (None: a topology
    this module has no formula for, e.g. a plugin's). Edge counts are exact for the regular
    topologies and expectations for the random ones."""
    n = int(neurons)
    o = {**TOPOLOGY_DEFAULTS.get(topology, {}), **{k: v for k, v in dict(options or {}).items() if v is not None}}
    s = max(1, n // 8) if num_sensory is None else int(num_sensory)
    m = max(1, n // 8) if num_motor is None else int(num_motor)
    log_n = math.log2(max(n, 2))
    types, distance = 1, 1
    if topology == "fully_connected":
        loops = bool(o.get("self_loops", False))
        edges, fan_in, sweeps = n * (n - 1) + n * loops, n - 1 + loops, 2
    elif topology == "erdos_renyi":
        given = dict(options or {})
        p = given.get("p")
        if p is None:
            p = min(1.0, float(given["density"]) * n / max(n - 1, 1)) if given.get("density") is not None else 0.1
        edges = float(p) * n * (n - 1)
        mean = edges / n
        fan_in, sweeps = mean + 3 * math.sqrt(mean) + 1, log_n / math.log2(max(mean, 2.0)) + 2
    elif topology == "small_world":
        k = int(o.get("k", 4))
        edges, fan_in, sweeps = n * (k // 2) * 2, k + 4, log_n + 2
    elif topology == "scale_free":
        m_ = int(o.get("m", 2))
        edges, fan_in, sweeps = 2 * m_ * max(n - m_, 0), m_ * math.sqrt(n) + m_, log_n + 2
    elif topology == "modular":
        blocks = max(1, int(o.get("blocks", 4)))
        sizes = [n // blocks + (1 if b < n % blocks else 0) for b in range(blocks)]
        inside = sum(z * (z - 1) for z in sizes)
        edges = float(o.get("p_in", 0.3)) * inside + float(o.get("p_out", 0.02)) * (n * n - sum(z * z for z in sizes))
        mean = edges / n
        fan_in, sweeps, types = mean + 3 * math.sqrt(mean) + 1, log_n + 2, blocks
    elif topology == "ring":
        k, both = int(o.get("k", 1)), bool(o.get("bidirectional", True))
        edges = min(n * k * (2 if both else 1), n * (n - 1))
        fan_in = edges / n
        sweeps = (n - s) / (2 * k if both else k) + 2
        distance = 1 if both else max(1, math.ceil((n - m - s + 1) / k))
    elif topology == "lattice":
        rows = math.floor(math.sqrt(n))
        while rows > 1 and n % rows:
            rows -= 1
        cols = n // rows
        periodic = bool(o.get("periodic", False))
        edges = 2 * (rows * (cols - 1) + cols * (rows - 1)) + (2 * (rows + cols) if periodic else 0)
        fan_in, sweeps = 4, rows + cols
        distance = 1 if periodic else max(1, (n - m) // cols - (s - 1) // cols)
    elif topology == "layered_ncp":
        density = float(o.get("density", 0.5))
        hidden = max(n - s - m, 2)
        inter = o.get("num_inter")
        inter = min(max(1, int(round(0.6 * hidden)) if inter is None else int(inter)), hidden - 1)
        command = hidden - inter
        fan = lambda key, default: int(o[key]) if o.get(key) is not None else default  # noqa: E731
        sensory_fanout = fan("sensory_fanout", max(1, int(inter * density)))
        inter_fanout = fan("inter_fanout", max(1, int(command * density)))
        recurrent = fan("recurrent_command_synapses", max(1, int(command * density * 2)))
        motor_fanin = fan("motor_fanin", max(1, int(command * density)))
        edges = s * sensory_fanout + inter * inter_fanout + min(recurrent, command * command) + m * motor_fanin
        fan_in = max(s * sensory_fanout / inter, inter * inter_fanout / command + recurrent / command, motor_fanin) + 3
        sweeps, distance, types = 4, 3, 4
    else:
        return None
    seconds = edges * SECONDS_PER_EDGE.get(topology, 4e-6) + 2 * sweeps * (edges + n) * SECONDS_PER_SWEEP_ELEMENT
    build_bytes = edges * BUILD_BYTES_PER_EDGE.get(topology, DEFAULT_BUILD_BYTES_PER_EDGE)
    return GraphSize(topology, n, float(edges), s, m, float(min(fan_in, n)), int(distance), types, seconds, build_bytes)
