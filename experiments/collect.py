"""`tnd-collect`: play expert games and store the demonstration dataset.

    tnd-collect                                   # single-player pong, data/default.yaml
    tnd-collect env=atari_pong data.num_episodes=32 data.epsilon=0.05

The dataset is addressed by its config (`tnd.data.storage.dataset_path`), so a second run
with the same config reuses it; tnd-train finds it the same way.
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from experiments import schema  # noqa: F401
from experiments.common import CONF_DIR, absolute, report_errors, run_dir, to_object


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="tnd_collect")
def main(cfg: DictConfig) -> dict | None:
    folder = run_dir()
    with report_errors(folder, {"env": cfg.env.name}, "tnd-collect"):
        from tnd.app.datasets import collect_dataset

        conf = to_object(cfg)
        conf.data.root = absolute(conf.data.root)
        conf.data.path = absolute(conf.data.path) if conf.data.path else None
        info = collect_dataset(conf.env, conf.data, progress=conf.progress)
        print(json.dumps(info, default=str), flush=True)
        return info
    return None


if __name__ == "__main__":
    main()
