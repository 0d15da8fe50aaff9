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
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from tnd.training.config import DataSpec, EnvSpec, EvalSpec, ExperimentSpec


@dataclasses.dataclass
class EvalConfig:
    """tnd-eval: a run folder, eval settings, optional env options for the evaluation env."""

    run_dir: str = MISSING
    eval: EvalSpec = dataclasses.field(default_factory=EvalSpec)
    env_options: Optional[dict[str, Any]] = None


@dataclasses.dataclass
class CollectConfig:
    """tnd-collect: an env and a dataset spec."""

    env: EnvSpec = dataclasses.field(default_factory=EnvSpec)
    data: DataSpec = dataclasses.field(default_factory=DataSpec)
    progress: bool = True


def register() -> None:
    """Stores the schemas (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=ExperimentSpec)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="collect_schema", node=CollectConfig)


register()
