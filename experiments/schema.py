"""Hydra structured-config schemas: the library's spec dataclasses, registered in ConfigStore.

The primary configs in ``conf/`` list ``train_schema`` / ``eval_schema`` /
``collect_schema`` first in their defaults, so every group file and override is merged
into a typed node: a wrong type or an unknown key fails at start-up with Hydra's message,
before anything is computed. Free-form option dicts (model/graph/env options) are closed
too (struct mode): adding a new key needs ``+``, and the library then rejects options the
model, topology or env does not have, listing the valid ones.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from tnd.training.config import DataSpec, EnvSpec, EvalSpec, ExperimentSpec


@dataclasses.dataclass
class TrainJobConfig(ExperimentSpec):
    """tnd-train: one experiment, or with ``seeds=[0,1,2]`` those seeds of it trained as one
    jitted program (each into ``<run folder>/seed=<k>/``; `tnd.app.run_seeds`)."""

    seeds: Optional[list[int]] = None

    def experiment(self) -> ExperimentSpec:
        """The plain `ExperimentSpec` (what checkpoints, hashes and summaries record)."""
        return ExperimentSpec(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ExperimentSpec)})


@dataclasses.dataclass
class EvalConfig:
    """tnd-eval: a run folder, eval settings, optional env options for the evaluation env."""

    run_dir: str = MISSING
    eval: EvalSpec = dataclasses.field(default_factory=EvalSpec)
    env_options: Optional[dict[str, Any]] = None
    plugins: list[str] = dataclasses.field(default_factory=list)  # consent to import the run's plugin modules
    json: bool = False  # print the metrics as one JSON line (tnd-eval --json)


@dataclasses.dataclass
class CollectConfig:
    """tnd-collect: an env and a dataset spec."""

    env: EnvSpec = dataclasses.field(default_factory=EnvSpec)
    data: DataSpec = dataclasses.field(default_factory=DataSpec)
    progress: bool = True


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
ENTRY_MODULES = {  # the console script of each Hydra app (pyproject.toml) -> its module
    "tnd-train": "experiments.train", "tnd-eval": "experiments.evaluate",
    "tnd-collect": "experiments.collect", "tnd-tune": "experiments.tune",
}


def usage_text(app_name: str) -> str:
    """``--help``'s header: the docstring of the command's module (what it does, examples)."""
    module = sys.modules.get(ENTRY_MODULES.get(app_name, "")) or importlib.import_module(ENTRY_MODULES[app_name])
    return (module.__doc__ or app_name).strip() + "\n"


def group_options(*, _root_) -> str:
    """``--help``'s groups: each config group this command composes, with its options
    (read from ``conf/<group>/``) and the one chosen now."""
    choices = OmegaConf.select(_root_, "hydra.runtime.choices") or {}
    lines = []
    for group, chosen in reversed(list(choices.items())):  # Hydra records them last-first
        folder = CONF_DIR / group
        if group.startswith("hydra") or not folder.is_dir():
            continue
        options = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        lines.append(f"{group}: {options}   (now: {chosen or 'none'})")
    return "\n".join(lines) or "(none)"


def register() -> None:
    """Stores the schemas and the help resolvers (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainJobConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="collect_schema", node=CollectConfig)
    OmegaConf.register_new_resolver("tnd_usage", usage_text, replace=True)
    OmegaConf.register_new_resolver("tnd_groups", group_options, replace=True)


register()
