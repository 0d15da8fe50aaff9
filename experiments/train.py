"""`tnd-train`: behavior cloning of one model on one env, configured by Hydra (conf/).

    tnd-train                                        # defaults: lstm on single-player pong
    tnd-train model=tnd graph=small_world seed=1
    tnd-train experiment=smoke model=cfc env=atari_pong
    tnd-train -m model=tnd,lstm seed=0,1 [hydra/launcher=local_parallel]
    tnd-train model=lstm seeds=[0,1,2]               # three seeds as one jitted program: <run>/seed=<k>/
    python -m experiments.train ...

Writes to the Hydra run folder: .hydra/ (Hydra's record of the job, written once the folder's
lock is held, so a second tnd-train refused there changes nothing), run.json (the run's own
description: its spec and overrides, as every run writes it), summary.json, metrics.jsonl,
train.log (the same rows as readable lines, checkpoints, evaluations, errors), tensorboard/,
checkpoints/ (and error.json on failure), and prints one short result line. Rerunning with the same ``hydra.run.dir=...``
resumes from the latest checkpoint and ends with the same parameters as an uninterrupted
run; Ctrl-C stops with one line naming the step reached, the last checkpoint and that command.
With ``seeds=[...]`` the seeds train as one program (parameters stacked on a seed axis, one
vmapped step) and each writes its own run folder ``seed=<k>/`` inside the job's folder; TND
and the sparse RNN then need one graph for every seed (``graph.seed=0``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments import running_as_command, schema  # noqa: F401  (schema registers the structured configs)
from experiments.common import CONF_DIR, launch_dir, report_errors, run_dir, to_object
from tnd.run_folder import RECORD_DIR, STACKED_SEEDS_KEY, own_run_folder, seed_folder
from tnd.training.config import check_seed


def result_line(summary: dict, folder) -> str:
    """One short line per finished run (the full record is ``summary.json``); the env's
    tally says its metrics (`tnd.envs.tally.Tally.headline`)."""
    from tnd.envs import get_env

    metrics = get_env(summary["env"]).tally.headline(summary)
    return (
        f"tnd-train: {summary['model']} seed={summary['seed']} on {summary['env']}: {metrics}; "
        f"{summary['num_params']:,} params, trained in {summary['train_seconds']:.0f} s -> {folder}/summary.json"
    )


@contextlib.contextmanager
def seed_logs(seed_folders: list[Path]) -> Iterator[None]:
    """While a stacked job trains, each seed folder's ``train.log`` also gets the job's log
    lines (the stack's lines name every seed's folder), so a seed folder reads like a run's."""
    logger = logging.getLogger("tnd")
    job_file = next((h for h in logger.handlers if isinstance(h, logging.FileHandler)), None)
    for folder in seed_folders:
        folder.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(folder / "train.log") for folder in seed_folders]
    for handler in handlers:
        if job_file is not None:
            handler.setFormatter(job_file.formatter)
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()


def write_record(folder: Path, config: DictConfig, overrides: list[str]) -> None:
    """``<folder>/.hydra/``: the job's record, the files Hydra writes for a job (``config.yaml``,
    ``hydra.yaml``, ``overrides.yaml``). tnd-train writes them itself, once it holds the run
    folder's lock (conf/tnd_train.yaml sets ``hydra.output_subdir: null``): Hydra would write
    them before any code of ours runs, so a second tnd-train that is then refused would
    already have rewritten the record of the run using the folder."""
    record = folder / RECORD_DIR
    record.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, record / "config.yaml")
    OmegaConf.save(HydraConfig.instance().cfg, record / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(list(overrides)), record / "overrides.yaml")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="tnd_train")
def main(cfg: DictConfig) -> dict | list[dict] | None:
    folder = run_dir()
    identity = {"model": cfg.model.name, "seed": int(cfg.seed), "env": cfg.env.name}
    seeds = None if cfg.get(STACKED_SEEDS_KEY) is None else [int(s) for s in cfg[STACKED_SEEDS_KEY]]
    folders = {s: seed_folder(folder, s) for s in dict.fromkeys(seeds or ())}
    also = [(f, {**identity, "seed": s}) for s, f in folders.items()]
    with report_errors(folder, identity, "tnd-train", also=also), own_run_folder(folder):
        overrides = list(HydraConfig.get().overrides.task)
        write_record(folder, cfg, overrides)
        from tnd.app.experiment import ExperimentError, run_experiment, run_seeds
        from tnd.app.spec import absolute, spec_from_job
        from tnd.training.runtime import use_compilation_cache

        job = to_object(cfg)
        if running_as_command() and job.compilation_cache:  # a process setting: the command's, not a caller's
            use_compilation_cache(absolute(job.compilation_cache, launch_dir()))
        spec = spec_from_job(job, overrides, base_dir=launch_dir())
        if seeds is None:
            summary = run_experiment(spec, folder, overrides=overrides)
            print(result_line(summary, folder), flush=True)
            return summary
        if not seeds or len(set(seeds)) != len(seeds):
            raise ExperimentError(f"seeds must list different seeds, e.g. seeds=[0,1,2]; got {seeds}.")
        for seed in seeds:
            check_seed("seeds", seed, example="seeds=[0,1,2]")
        with seed_logs(list(folders.values())):
            summaries = run_seeds(spec, seeds, list(folders.values()), overrides=overrides)
        for summary, where in zip(summaries, folders.values()):
            print(result_line(summary, where), flush=True)
        return summaries
    return None


if __name__ == "__main__":
    main()
