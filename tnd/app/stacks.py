"""Seeds in one program: which seeds of a stack share a compiled program, and the padding that
lets seeds with different graphs share one.

A model that holds its graph as data (TND, ``model.program_shape()``) compiles to a program
that depends on its graph's shape only. Seeds whose graphs have equal neuron, edge, sensory
and motor counts share one program once their fan-in, fan-out and rounds per step are padded
to the largest (`common_program_shape`); seeds whose models still differ in structure train
as separate programs (`program_groups`).
"""

from __future__ import annotations

from typing import Any

from flax import nnx


def common_program_shape(models: list[nnx.Module]) -> Any:
    """The program shape every model of a stack pads to, or None when none needs padding
    (fewer than two models, models without ``program_shape()``, or shapes that already agree)."""
    shapes = [m.program_shape() if callable(getattr(m, "program_shape", None)) else None for m in models]
    if len(models) < 2 or any(s is None for s in shapes) or len(set(shapes)) == 1:
        return None
    return type(shapes[0]).common(shapes)


def program_groups(models: list[nnx.Module]) -> list[list[int]]:
    """The indices of ``models`` grouped by structure: each group can train as one program."""
    groups: list[tuple[Any, list[int]]] = []
    for i, model in enumerate(models):
        graphdef = nnx.graphdef(model)
        match = next((members for g, members in groups if g == graphdef), None)
        if match is None:
            groups.append((graphdef, [i]))
        else:
            match.append(i)
    return [members for _, members in groups]
