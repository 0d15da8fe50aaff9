"""`tnd-eval`: evaluate the latest checkpoint of any tnd-train run folder.

    tnd-eval outputs/train/<run> eval.num_games=100 eval.seed=7
    tnd-eval multirun/pong_table/pong/default/model=tnd,seed=0      # a positional folder: any name works
    tnd-eval run_dir=outputs/train/<run>                              # the same, as an override
    tnd-eval <run> +eval.env_overrides.repeat_action_probability=0.0  # atari: no sticky actions
    tnd-eval <run> +env_options.max_steps=5000                        # change env options (also without the +)
    tnd-eval <run> plugins=[my_topologies]        # a run trained with plugins: name them (your consent)
    tnd-eval <run> --json                         # the metrics as one JSON line (same as json=true)

``env_options`` given replace those options of the training env (the others stay as
trained; an unknown one fails with the valid ones); ``eval.env_overrides`` apply on top.
Prints one line (the model, the checkpoint, the games, the main metrics and where the full
record went) and writes every metric to ``<eval run folder>/eval.json`` (the Hydra run
folder of this command, ``outputs/eval/<time>/``; the training run folder is left
untouched). A failed evaluation leaves no eval folder behind. A progress bar counts the
games (``eval.progress=false``: none).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig

from experiments import schema  # noqa: F401
from experiments.common import CONF_DIR, absolute, hydra_value, report_errors, run_dir, to_object
from tnd.run_folder import ERROR_FILE, EVAL_FILE, write_json

PROG = "tnd-eval"
USAGE = f"usage: {PROG} RUN_DIR [overrides ...]   (or run_dir=RUN_DIR; {PROG} --help lists the options)"


class UsageError(ValueError):
    """The command line names no run folder."""


JSON_FLAG = "--json"  # print the metrics as one JSON line: the override json=true
OPTION_DICTS = ("env_options", "eval.env_overrides")  # free-form option dicts: any key may be set


def is_folder_argument(arg: str) -> bool:
    """Whether an argument is the run folder rather than a Hydra override: it has no ``=``, is
    an existing folder, or the part before its ``=`` is a path that no override key can be
    (``/tmp/runs/model=lstm``, ``runs/model=lstm,seed=0``: a ``/`` outside a config group)."""
    if "=" not in arg or Path(arg).is_dir():
        return True
    key = arg.partition("=")[0]
    if key.startswith(("/", "./", "../", "~/")):
        return True
    first = key.lstrip("+~").split("/")[0]
    return "/" in key and first != "hydra" and not (Path(CONF_DIR) / first).is_dir()


def option_dict_argument(arg: str) -> str:
    """``env_options.K=V``, ``+env_options.K=V`` or ``env_options={K: V}`` -> the same with
    ``++`` (likewise ``eval.env_overrides``): the keys of a free-form option dict are set
    whether or not the dict holds them yet. Hydra wants ``+`` for a new key, refuses it for
    one the dict already has, and refuses new keys in a dict value; ``++`` does all three
    (a dict value is merged into what earlier arguments set). Other arguments pass."""
    key, sep, value = arg.partition("=")
    bare = key.lstrip("+")
    if sep and any(bare == d or bare.startswith(d + ".") for d in OPTION_DICTS):
        return f"++{bare}={value}"
    return arg


def hydra_arguments(argv: Sequence[str]) -> list[str]:
    """The command line as Hydra arguments: ``--json`` as ``json=true``, option-dict keys
    settable without ``+`` (`option_dict_argument`), the run folder as ``run_dir=``
    (`run_dir_arguments`)."""
    args = ["json=true" if a == JSON_FLAG else a for a in argv]
    return run_dir_arguments([a if a.startswith("-") else option_dict_argument(a) for a in args])


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
        elif folder is None and is_folder_argument(arg):
            folder = arg
        else:
            out.append(arg)
    if folder is None:
        if {"-h", "--help", "--hydra-help", "--info", "-c", "--cfg"} & set(flags):
            return out
        strays = [a for a in out if not a.startswith("-") and not is_setting(a)]
        stray = f" ({strays[0]} is neither a folder here nor a {PROG} setting)" if strays else ""
        raise UsageError(f"no run folder given{stray}. {USAGE}")
    return [f"run_dir={hydra_value(folder)}", *out]


def is_setting(arg: str) -> bool:
    """Whether ``arg`` overrides a key of tnd-eval's config (`schema.EvalConfig`) or Hydra's."""
    key = arg.partition("=")[0].lstrip("+~").split(".")[0].split("/")[0]
    return key == "hydra" or key in {f.name for f in dataclasses.fields(schema.EvalConfig)}


def result_line(metrics: dict, path: Path) -> str:
    """One short line per evaluation (the full record is ``eval.json``); the env's tally
    says its main metrics (`tnd.envs.tally.Tally.headline`)."""
    from tnd.envs import get_env

    return (
        f"{PROG}: {metrics['model']} seed={metrics['seed']} (checkpoint {metrics['checkpoint_step']}) on "
        f"{metrics['env']}, {metrics['games']} games of eval seed {metrics['eval_seed']}: "
        f"{get_env(metrics['env']).tally.headline(metrics)}; {metrics['eval_seconds']:.1f} s -> {path}"
    )


# What Hydra and `report_errors` put in an eval folder before or when the command fails.
FAILURE_LEFTOVERS = (".hydra", ERROR_FILE)


@contextlib.contextmanager
def removed_on_failure(folder: Path):
    """A failing evaluation leaves no eval folder: the one Hydra made for this command is
    removed when the command ends with an error, unless it holds more than Hydra's record,
    its log and ``error.json`` (a folder reused with ``hydra.run.dir`` keeps what it had)."""
    try:
        yield
    except BaseException:
        entries = list(folder.iterdir()) if folder.is_dir() else []
        if all(p.name in FAILURE_LEFTOVERS or p.suffix == ".log" for p in entries):
            shutil.rmtree(folder, ignore_errors=True)
        raise


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="tnd_eval")
def app(cfg: DictConfig) -> dict | None:
    folder = run_dir()
    with removed_on_failure(folder), report_errors(folder, {"run_dir": str(cfg.run_dir)}, PROG):
        from tnd.app.restore import evaluate_checkpoint

        conf = to_object(cfg)
        metrics = evaluate_checkpoint(absolute(conf.run_dir), conf.eval, env_options=conf.env_options,
                                      plugins=conf.plugins)
        folder.mkdir(parents=True, exist_ok=True)
        path = write_json(folder / EVAL_FILE, metrics)
        print(json.dumps(metrics, default=str) if conf.json else result_line(metrics, path), flush=True)
        return metrics
    return None


def main() -> None:
    """Console entry point: the run folder is taken positionally (any name), then Hydra runs."""
    try:
        sys.argv[1:] = hydra_arguments(sys.argv[1:])
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    app()


if __name__ == "__main__":
    main()
