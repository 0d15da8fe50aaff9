"""Plot helpers for topologies, neuron trajectories, training curves and stability.

Every helper builds a `matplotlib.figure.Figure` directly (Agg canvas, no pyplot state, so
it works headless, in scripts and in notebooks alike), returns it, and saves it to
``path`` when one is given (the format follows the suffix; parent folders are created).
In a notebook, the returned figure displays as the cell's value.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tnd.analysis.activity import StateTrajectory
from tnd.analysis.stability import AnalysisError
from tnd.graph.neuron_graph import NeuronGraph

PathLike = str | Path

# Neuron roles: sensory (input), motor (read-out), both, and hidden (inter-) neurons.
ROLE_COLOURS = {"sensory": "#2ca02c", "motor": "#d62728", "sensory+motor": "#9467bd", "hidden": "#9e9e9e"}


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


# ---------------------------------------------------------------------- topology
def _edge_weight_vector(graph: NeuronGraph, edge_weights: Any) -> np.ndarray:
    """Edge weights as ``[E]`` in the graph's edge order, from ``[E]``, ``[N, N]`` or a dict."""
    if isinstance(edge_weights, Mapping):
        index = {label: i for i, label in enumerate(graph.labels)}
        lookup = {(index[u], index[v]): float(w) for (u, v), w in edge_weights.items()}
        return np.array([lookup.get((s, r), 0.0) for s, r in zip(graph.senders, graph.receivers)])
    w = np.asarray(edge_weights, dtype=float)
    n, e = graph.num_neurons, graph.num_edges
    if w.shape == (n, n):
        return w[graph.senders, graph.receivers]
    if w.ndim >= 1 and w.shape[0] == e:  # [E], or per-edge vectors [E, ...]: use the norm
        return w if w.ndim == 1 else np.linalg.norm(w.reshape(e, -1), axis=1)
    raise AnalysisError(
        f"edge_weights of shape {w.shape} do not match graph '{graph.name}': pass [E] = ({e},) in the "
        f"graph's edge order (graph.senders/receivers), [E, k] per-edge vectors, an [N, N] = ({n}, {n}) "
        "matrix with W[sender, receiver], or a dict {(u, v): w} keyed by node labels."
    )


def _layout(g: nx.DiGraph, layout: str | Mapping, seed: int) -> dict:
    if isinstance(layout, Mapping):
        return dict(layout)
    if layout == "spring":
        return nx.spring_layout(g, seed=seed)
    if layout == "circular":
        return nx.circular_layout(g)
    if layout == "kamada_kawai":
        return nx.kamada_kawai_layout(g)
    if layout == "shell":
        return nx.shell_layout(g)
    raise AnalysisError(
        f"Unknown layout {layout!r}: use 'spring', 'circular', 'kamada_kawai', 'shell' or a {{node: (x, y)}} dict."
    )


def plot_topology(
    graph: NeuronGraph,
    edge_weights: Any = None,
    path: PathLike | None = None,
    *,
    layout: str | Mapping = "spring",
    seed: int = 0,
    with_labels: bool | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 5.0),
) -> Figure:
    """Draws a neuron graph (via ``graph.to_networkx()``) with its neuron roles marked.

    Sensory neurons are green, motor neurons red, neurons that are both purple, the other
    (hidden) neurons grey; a legend names them. With ``edge_weights`` (``[E]`` in the graph's
    edge order, ``[E, k]`` per-edge vectors (their norm is used), an ``[N, N]`` matrix
    ``W[sender, receiver]``, or a dict ``{(u, v): w}``), edge width is proportional to
    ``|w|``, edge colour gives the sign (blue > 0, orange < 0), and zero-weight edges (e.g.
    pruned by a sparse gate) are drawn thin dotted.
    """
    g = graph.to_networkx()
    pos = _layout(g, layout, seed)
    fig = _new_figure(*figsize)
    ax = fig.add_subplot()
    sensory, motor = set(graph.sensory.tolist()), set(graph.motor.tolist())
    roles = []
    for i in range(graph.num_neurons):
        roles.append(
            "sensory+motor" if i in sensory and i in motor
            else "sensory" if i in sensory else "motor" if i in motor else "hidden"
        )
    nodelist = list(graph.labels)
    node_size = 300 if graph.num_neurons <= 40 else max(20, 12000 // graph.num_neurons)
    nx.draw_networkx_nodes(
        g, pos, nodelist=nodelist, node_color=[ROLE_COLOURS[r] for r in roles], node_size=node_size,
        edgecolors="black", linewidths=0.5, ax=ax,
    )
    edgelist = [(graph.labels[s], graph.labels[r]) for s, r in zip(graph.senders, graph.receivers)]
    arrows = graph.num_edges <= 2000
    # Curve the edges (arrows only) so that j -> i and i -> j do not lie on one line.
    curve = {"connectionstyle": "arc3,rad=0.12"} if arrows else {}
    if edge_weights is None:
        nx.draw_networkx_edges(
            g, pos, edgelist=edgelist, width=0.8, alpha=0.5, arrows=arrows, node_size=node_size,
            arrowsize=8, ax=ax, **curve,
        )
    else:
        w = _edge_weight_vector(graph, edge_weights)
        scale = np.max(np.abs(w)) if np.any(w != 0) else 1.0
        kept = np.abs(w) > 0
        widths = 0.3 + 3.5 * np.abs(w) / scale
        colours = np.where(w >= 0, "#1f77b4", "#ff7f0e")
        on = [e for e, k in zip(edgelist, kept) if k]
        off = [e for e, k in zip(edgelist, kept) if not k]
        if off:
            nx.draw_networkx_edges(
                g, pos, edgelist=off, width=0.4, style="dotted", edge_color="#bbbbbb", arrows=False,
                node_size=node_size, ax=ax,
            )
        if on:
            nx.draw_networkx_edges(
                g, pos, edgelist=on, width=widths[kept].tolist(), edge_color=colours[kept].tolist(),
                alpha=0.7, arrows=arrows, arrowsize=8, node_size=node_size, ax=ax, **curve,
            )
    if with_labels if with_labels is not None else graph.num_neurons <= 40:
        nx.draw_networkx_labels(g, pos, font_size=7, ax=ax)
    handles = [
        Line2D([], [], marker="o", linestyle="", markerfacecolor=ROLE_COLOURS[r], markeredgecolor="black", label=r)
        for r in ROLE_COLOURS if r in roles
    ]
    if edge_weights is not None:
        handles += [
            Line2D([], [], color="#1f77b4", label="w > 0"), Line2D([], [], color="#ff7f0e", label="w < 0"),
            Line2D([], [], color="#bbbbbb", linestyle=":", label="w = 0"),
        ]
    ax.legend(handles=handles, loc="best", fontsize=7, framealpha=0.8)
    ax.set_title(title or f"{graph.name}: {graph.num_neurons} neurons, {graph.num_edges} edges")
    ax.set_axis_off()
    return _finish(fig, path)


# ---------------------------------------------------------------------- trajectories
def _event_times(events: Any, steps: int) -> np.ndarray:
    events = np.asarray(events)
    if events.dtype == bool:
        if events.shape != (steps,):
            raise AnalysisError(f"Boolean events must have shape [T] = ({steps},), got {events.shape}.")
        return np.nonzero(events)[0]
    return events.astype(int).reshape(-1)


def plot_state_trajectories(
    traj: StateTrajectory | Any,
    neurons: Sequence[int] | None = None,
    path: PathLike | None = None,
    *,
    batch_index: int = 0,
    events: Any = None,
    event_label: str = "catch",
    max_dims: int = 4,
    title: str | None = None,
) -> Figure:
    """Neuron states over time for one sequence (e.g. a rally), one panel per neuron.

    Args:
      traj: a `StateTrajectory` (its per-neuron view when present, else the flat one) or an
        array ``[T, D]``, ``[B, T, D]`` or ``[B, T, N, d]``.
      neurons: which neurons (or flat units) to draw, e.g. ``graph.motor``; default the
        first 8.
      batch_index: which sequence of the batch.
      events: time steps to mark with vertical lines (e.g. catches): ``[T]`` bool or indices.
      max_dims: at most this many state dims are drawn per neuron.
    """
    if isinstance(traj, StateTrajectory):
        units = np.asarray(traj.units())
    else:
        units = np.asarray(traj)
        if units.ndim == 2:
            units = units[None]
        if units.ndim == 3:
            units = units[..., None]
        if units.ndim != 4:
            raise AnalysisError(
                f"Expected a StateTrajectory, [T, D], [B, T, D] or [B, T, N, d] array, got shape {units.shape}."
            )
    if not 0 <= batch_index < units.shape[0]:
        raise AnalysisError(f"batch_index {batch_index} out of range for batch size {units.shape[0]}.")
    units = units[batch_index]  # [T, N, d]
    steps, count = units.shape[:2]
    neurons = list(range(min(8, count))) if neurons is None else [int(i) for i in neurons]
    bad = [i for i in neurons if not 0 <= i < count]
    if bad or not neurons:
        raise AnalysisError(f"neurons must be a non-empty list of indices in 0..{count - 1}, got {neurons}.")
    marks = _event_times(events, steps) if events is not None else np.zeros((0,), int)
    fig = _new_figure(7.0, 1.0 + 1.1 * len(neurons))
    axes = fig.subplots(len(neurons), 1, sharex=True, squeeze=False)[:, 0]
    t = np.arange(steps)
    for ax, i in zip(axes, neurons):
        for k in range(min(max_dims, units.shape[2])):
            ax.plot(t, units[:, i, k], linewidth=1.0)
        for m in marks:
            ax.axvline(m, color="#d62728", linewidth=0.8, alpha=0.6, linestyle="--")
        ax.set_ylabel(f"n{i}", rotation=0, labelpad=12, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("time step")
    if marks.size:
        axes[0].legend(
            handles=[Line2D([], [], color="#d62728", linestyle="--", label=event_label)], fontsize=7, loc="upper right"
        )
    fig.suptitle(title or "neuron states", fontsize=10)
    return _finish(fig, path)


# ---------------------------------------------------------------------- training curves
def read_metrics(path: PathLike) -> list[dict]:
    """The records of a ``metrics.jsonl`` (one JSON object per line); blank/broken lines skipped."""
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number}: not a JSON object, skipped.", stacklevel=2)
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _series(records: list[dict], key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{metric name: (steps, values)}`` for ``key``: the exact key, else keys ending in
    ``/key``, ``.key`` or ``_key`` (e.g. ``train/loss``, ``eval_loss``)."""
    names = {k for r in records for k in r}
    matches = [key] if key in names else sorted(
        n for n in names if n.endswith((f"/{key}", f".{key}", f"_{key}"))
    )
    out = {}
    for name in matches:
        points = [
            (r["step"], r[name]) for r in records
            if _is_number(r.get("step")) and _is_number(r.get(name))
        ]
        if points:
            steps, values = np.array(points, dtype=float).T
            order = np.argsort(steps, kind="stable")
            out[name] = (steps[order], values[order])
    return out


def plot_training_curves(
    metrics: PathLike | Sequence[PathLike],
    keys: Sequence[str] = ("loss", "accuracy"),
    path: PathLike | None = None,
    *,
    labels: Sequence[str] | None = None,
    log_y: Sequence[str] = (),
) -> Figure:
    """Training curves from one or more ``metrics.jsonl`` files, one panel per key.

    Each line of a file is a JSON object with a numeric ``"step"`` and any numeric metrics.
    Lines without ``step`` or without a key (e.g. eval-only lines) are skipped for that key;
    a key also matches prefixed/suffixed names (``train/loss``, ``eval_loss``), each drawn
    as its own line. A panel with no data says so. Runs are labelled by ``labels`` or by
    the folder holding each file.
    """
    paths = [metrics] if isinstance(metrics, (str, Path)) else list(metrics)
    if not paths:
        raise AnalysisError("plot_training_curves needs at least one metrics.jsonl path.")
    if isinstance(keys, str):
        keys = (keys,)
    if labels is None:
        labels = [Path(p).parent.name or Path(p).stem for p in paths]
    if len(labels) != len(paths):
        raise AnalysisError(f"{len(labels)} labels for {len(paths)} metrics files.")
    runs = [(label, read_metrics(p)) for label, p in zip(labels, paths)]
    fig = _new_figure(4.0 * len(keys), 3.2)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        drawn = 0
        for label, records in runs:
            for name, (steps, values) in _series(records, key).items():
                ax.plot(steps, values, marker="." if len(steps) < 30 else None, linewidth=1.2,
                        label=label if name == key else f"{label}: {name}")
                drawn += 1
        if drawn:
            ax.legend(fontsize=7)
            if key in log_y:
                ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, f"no '{key}' data", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    return _finish(fig, path)


# ---------------------------------------------------------------------- stability
def plot_stability(
    results: Mapping[str, Any],
    path: PathLike | None = None,
    *,
    ylabel: str = "largest Lyapunov exponent (nats / step)",
    title: str = "neuronal stability",
    seed: int = 0,
) -> Figure:
    """The stability metric across models: a box per model with its per-episode points.

    Args:
      results: ``{model name: exponents}``, each ``[E]`` or ``[E, k]`` (then the largest,
        column 0, is drawn), e.g. from `model_lyapunov`. The dashed line at 0 separates
        contracting (< 0, stable) from expanding (> 0) dynamics.
    """
    if not results:
        raise AnalysisError("plot_stability needs at least one {model name: exponents} entry.")
    names, data = [], []
    for name, values in results.items():
        v = np.asarray(values, dtype=float)
        v = v[:, 0] if v.ndim == 2 else v.reshape(-1)
        names.append(str(name))
        data.append(v[np.isfinite(v)])
    rng = np.random.default_rng(seed)
    fig = _new_figure(max(3.5, 1.1 * len(names) + 1.5), 3.5)
    ax = fig.add_subplot()
    positions = np.arange(1, len(names) + 1)
    ax.boxplot([d if d.size else [np.nan] for d in data], positions=positions, widths=0.5, showfliers=False)
    for x, d in zip(positions, data):
        ax.scatter(x + rng.uniform(-0.12, 0.12, d.size), d, s=12, alpha=0.7, zorder=3)
    ax.axhline(0.0, color="black", linestyle="--", linewidth=0.8)
    ax.set_xticks(positions, names, rotation=20 if len(names) > 4 else 0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig, path)
