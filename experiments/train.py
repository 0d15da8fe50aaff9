"""`tnd-train`: behavior cloning of one model on one env, configured by Hydra (conf/).

    tnd-train                                        # defaults: lstm on single-player pong
    tnd-train model=tnd graph=small_world seed=1
    tnd-train experiment=smoke model=cfc env=atari_pong
    tnd-train -m model=tnd,lstm seed=0,1 [hydra/launcher=local_parallel]
    python -m experiments.train ...

Writes to the Hydra run folder: summary.json, metrics.jsonl, train.log (the same rows as
readable lines, checkpoints, evaluations, errors), tensorboard/, checkpoints/ (and error.json
on failure), and prints one short result line. Rerunning with the same ``hydra.run.dir=...``
resumes from the latest checkpoint and ends with the same parameters as an uninterrupted
run; Ctrl-C stops with one line naming the step reached, the last checkpoint and that command.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from experiments import schema  # noqa: F401  (registers the structured configs)
from experiments.common import CONF_DIR, absolute, report_errors, run_dir, to_object, use_command_line_graph


def result_line(summary: dict, folder) -> str:
    """One short line per finished run (the full record is ``summary.json``); the env's
    tally says its metrics (`tnd.envs.tally.Tally.headline`)."""
    from tnd.envs import get_env

    metrics = get_env(summary["env"]).tally.headline(summary)
    return (
        f"tnd-train: {summary['model']} seed={summary['seed']} on {summary['env']}: {metrics}; "
        f"{summary['num_params']:,} params, trained in {summary['train_seconds']:.0f} s -> {folder}/summary.json"
    )


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="tnd_train")
def main(cfg: DictConfig) -> dict | None:
    folder = run_dir()
    identity = {"model": cfg.model.name, "seed": int(cfg.seed), "env": cfg.env.name}
    with report_errors(folder, identity, "tnd-train"):
        from tnd.app.experiment import run_experiment

        spec = to_object(cfg)
        use_command_line_graph(spec)
        spec.data.root = absolute(spec.data.root)
        spec.data.path = absolute(spec.data.path) if spec.data.path else None
        summary = run_experiment(spec, folder)
        print(result_line(summary, folder), flush=True)
        return summary
    return None


if __name__ == "__main__":
    main()
