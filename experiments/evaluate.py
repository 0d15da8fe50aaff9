"""`tnd-eval`: evaluate the latest checkpoint of any tnd-train run folder.

    tnd-eval run_dir=outputs/train/<run> eval.num_games=100 eval.seed=7
    tnd-eval run_dir=<run> +eval.env_overrides.repeat_action_probability=0.0   # atari: no sticky actions
    tnd-eval run_dir=<run> +env_options.max_steps=5000                           # replace env options

Prints the metrics as one JSON line and writes them to ``<eval run folder>/eval.json``
(the Hydra run folder of this command; the training run folder is left untouched).
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from experiments import schema  # noqa: F401
from experiments.common import CONF_DIR, absolute, report_errors, run_dir, to_object
from tnd.run_folder import EVAL_FILE, write_json


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="tnd_eval")
def main(cfg: DictConfig) -> dict | None:
    folder = run_dir()
    with report_errors(folder, {"run_dir": str(cfg.run_dir)}, "tnd-eval"):
        from tnd.training.pipeline import evaluate_checkpoint

        conf = to_object(cfg)
        metrics = evaluate_checkpoint(absolute(conf.run_dir), conf.eval, env_options=conf.env_options)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / EVAL_FILE, metrics)
        print(json.dumps(metrics, default=str), flush=True)
        return metrics
    return None


if __name__ == "__main__":
    main()
