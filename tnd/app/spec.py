"""From overrides to an `ExperimentSpec`: the one path every entry point and notebook takes.

    spec = load_spec(["experiment=smoke", "model=lstm", "seed=1"])   # what `tnd-train <overrides>` trains
    summary = run_experiment(spec, "runs/lstm", overrides=[...])

`load_spec` composes ``conf/tnd_train.yaml`` with Hydra's compose API and the same overrides
a user types after ``tnd-train``; `spec_from_job` turns a composed job into the spec
(``tnd-train`` calls it on the config Hydra composed for it), so the same overrides give the
same spec and the same `tnd.app.config_hash` from the terminal, a sweep and a notebook.

The schema dataclasses (`TrainJobConfig`, `EvalConfig`, `CollectConfig`) are the library's
spec dataclasses registered in Hydra's ConfigStore: every group file and override is merged
into a typed node, so a wrong type or an unknown key fails at composition, before anything
is computed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING

from tnd.run_folder import override_key
from tnd.training.config import DataSpec, EnvSpec, EvalSpec, ExperimentSpec

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"  # the project's Hydra configs
TRAIN_CONFIG = "tnd_train"


class SpecError(ValueError):
    """Overrides that do not describe one experiment."""


class ExperimentError(ValueError):
    """Invalid experiment settings (sizes, options, names)."""


def check_positive(name: str, value: Any) -> None:
    """`ExperimentError` unless ``value`` is a positive integer (``name``: the setting)."""
    if value is None or int(value) <= 0:
        raise ExperimentError(f"{name} must be a positive integer, got {value}.")


@dataclasses.dataclass
class TrainJobConfig(ExperimentSpec):
    """tnd-train: one experiment, or with ``seeds=[0,1,2]`` those seeds of it trained as one
    jitted program (each into ``<run folder>/seed=<k>/``; `tnd.app.run_seeds`)."""

    seeds: Optional[list[int]] = None
    compilation_cache: Optional[str] = None  # JAX's persistent compilation cache (`use_compilation_cache`)

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


def register_schemas() -> None:
    """Stores the schemas in Hydra's ConfigStore (idempotent); the configs in ``conf/`` name
    them first in their defaults (``train_schema``, ``eval_schema``, ``collect_schema``)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainJobConfig)
    store.store(name="eval_schema", node=EvalConfig)
    store.store(name="collect_schema", node=CollectConfig)


def names_graph(overrides: Sequence[str]) -> bool:
    """Whether the overrides choose the graph group (``graph=ring``, ``graph.options.k=4``)."""
    return any(override_key(o).split(".")[0] == "graph" for o in overrides)


def spec_from_job(job: TrainJobConfig, overrides: Sequence[str], base_dir: str | os.PathLike) -> ExperimentSpec:
    """The `ExperimentSpec` of a composed ``tnd-train`` job.

    ``graph=...`` among ``overrides`` replaces a model's own topology (a tuned one,
    ``model.options.topology``); relative data paths are resolved against ``base_dir``
    (where the command was launched).
    """
    spec = job.experiment()
    if names_graph(overrides):
        for key in ("topology", "topology_options"):
            if key in spec.model.options:
                spec.model.options[key] = None
    spec.data.root = absolute(spec.data.root, base_dir)
    spec.data.path = absolute(spec.data.path, base_dir) if spec.data.path else None
    return spec


def absolute(path: str, base_dir: str | os.PathLike) -> str:
    """``path`` (``~`` expanded) resolved against ``base_dir`` when relative."""
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else Path(base_dir) / p)


def compose_job(overrides: Sequence[str] = (), config_name: str = TRAIN_CONFIG, **compose_options):
    """The composed config of ``config_name`` (``conf/<config_name>.yaml``) with ``overrides``
    (``compose_options`` go to Hydra's ``compose``, e.g. ``return_hydra_config=True``).

    Inside a running Hydra app (tnd-tune's trials) its own config search path is used;
    elsewhere (a notebook, a script) ``conf/`` of this project.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_schemas()
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=list(overrides), **compose_options)
    if not (CONF_DIR / f"{config_name}.yaml").is_file():
        raise SpecError(f"No {config_name}.yaml in {CONF_DIR}: load_spec needs the project's conf/ folder "
                        "(install the project with pip install -e . from its checkout).")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="tnd"):
        return compose(config_name=config_name, overrides=list(overrides), **compose_options)


def load_spec(overrides: Sequence[str] = (), *, base_dir: str | os.PathLike | None = None) -> ExperimentSpec:
    """The `ExperimentSpec` that ``tnd-train <overrides>`` would train (one seed).

    ``base_dir`` resolves relative data paths (default: the current directory). Several
    seeds as one program (``seeds=[...]``) are `tnd.app.run_seeds`'s job: pass ``seed=<k>``
    here and the seeds there.
    """
    from omegaconf import OmegaConf

    job = OmegaConf.to_object(compose_job(overrides))
    if job.seeds is not None:
        raise SpecError(f"load_spec gives one experiment, but the overrides set seeds={job.seeds}; drop it and "
                        "call run_seeds(spec, seeds, run_dirs) for several seeds as one program.")
    return spec_from_job(job, overrides, Path.cwd() if base_dir is None else base_dir)
