"""`tnd-eval`: evaluate the latest checkpoint of any tnd-train run folder.

    tnd-eval outputs/train/<run> eval.num_games=100 eval.seed=7
    tnd-eval multirun/pong_table/pong/default/model=tnd,seed=0      # a positional folder: any name works
    tnd-eval run_dir=outputs/train/<run>                              # the same, as an override
    tnd-eval <run> +eval.env_overrides.repeat_action_probability=0.0  # atari: no sticky actions
    tnd-eval <run> +env_options.max_steps=5000                        # replace env options
    tnd-eval <run> plugins=[my_topologies]        # a run trained with plugins: name them (your consent)

Prints the metrics as one JSON line and writes them to ``<eval run folder>/eval.json``
(the Hydra run folder of this command; the training run folder is left untouched).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig

from experiments import schema  # noqa: F401
from experiments.common import CONF_DIR, absolute, hydra_value, report_errors, run_dir, to_object
from tnd.run_folder import EVAL_FILE, write_json

PROG = "tnd-eval"
USAGE = f"usage: {PROG} RUN_DIR [overrides ...]   (or run_dir=RUN_DIR; {PROG} --help lists the options)"


class UsageError(ValueError):
    """The command line names no run folder, or one that does not exist."""


def run_dir_arguments(argv: Sequence[str]) -> list[str]:
    """Hydra arguments from ``argv``, with the run folder as a quoted ``run_dir=`` override.

    The folder may come first as a plain path, or as ``run_dir=PATH``; either way it is
    quoted for Hydra, whose grammar would split folder names with ``=`` or ``,`` (those of a
    multirun, e.g. ``model=tnd,seed=0``).
    """
    args = list(argv)
    flags = [a for a in args if a.startswith("-")]
    out, folder = [], None
    for arg in args:
        if arg.startswith("-"):
            out.append(arg)
        elif arg.startswith("run_dir="):
            value = arg.partition("=")[2]
            folder = value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"" else value
        elif folder is None and ("=" not in arg or Path(arg).is_dir()):
            folder = arg
        else:
            out.append(arg)
    if folder is None:
        if {"-h", "--help", "--hydra-help", "--info", "-c", "--cfg"} & set(flags):
            return out
        raise UsageError(f"no run folder given. {USAGE}")
    return [f"run_dir={hydra_value(folder)}", *out]


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="tnd_eval")
def app(cfg: DictConfig) -> dict | None:
    folder = run_dir()
    with report_errors(folder, {"run_dir": str(cfg.run_dir)}, PROG):
        from tnd.app.restore import evaluate_checkpoint

        conf = to_object(cfg)
        metrics = evaluate_checkpoint(absolute(conf.run_dir), conf.eval, env_options=conf.env_options,
                                      plugins=conf.plugins)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / EVAL_FILE, metrics)
        print(json.dumps(metrics, default=str), flush=True)
        return metrics
    return None


def main() -> None:
    """Console entry point: the run folder is taken positionally (any name), then Hydra runs."""
    try:
        sys.argv[1:] = run_dir_arguments(sys.argv[1:])
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    app()


if __name__ == "__main__":
    main()
