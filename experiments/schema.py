"""The entry points' Hydra schemas (`tnd.app.spec`, registered in ConfigStore) and ``--help`` text.

The primary configs in ``conf/`` list ``train_schema`` / ``eval_schema`` /
``collect_schema`` first in their defaults, so every group file and override is merged
into a typed node: a wrong type or an unknown key fails at start-up with Hydra's message,
before anything is computed. Free-form option dicts (model/graph/env options) are closed
too (struct mode): adding a new key needs ``+``, and the library then rejects options the
model, topology or env does not have, listing the valid ones.
"""

from __future__ import annotations

import importlib
import sys

from omegaconf import OmegaConf

from tnd.app.spec import CONF_DIR, CollectConfig, EvalConfig, TrainJobConfig, register_schemas

__all__ = ["CONF_DIR", "CollectConfig", "EvalConfig", "TrainJobConfig", "register", "register_schemas"]


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
    register_schemas()
    OmegaConf.register_new_resolver("tnd_usage", usage_text, replace=True)
    OmegaConf.register_new_resolver("tnd_groups", group_options, replace=True)


register()
