"""What the three Hydra entry points share: config conversion, paths, and error reporting.

Library code never sees Hydra objects: `to_spec` turns the composed config into the
library's dataclasses. `report_errors` turns a bad-input error (any ``ValueError``; every
library error subclasses it) into ONE readable line on stderr plus ``error.json`` in the
run folder, exit status 1; in a multirun the job is marked failed (``error.json``) and the
sweep goes on. Set ``HYDRA_FULL_ERROR=1`` to see the traceback. Unexpected exceptions
(bugs) also write ``error.json`` and then propagate with their traceback. Ctrl-C ends with
one line (the step reached, the last checkpoint, the command that resumes) and exit 130.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from tnd.run_folder import ERROR_FILE, write_json

# The config tree at the repository root, as an absolute path: Hydra would otherwise turn a
# relative path into a *module* path when the entry point is imported (console scripts).
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def quiet_libraries() -> None:
    """Hydra sets the root logger to INFO; orbax (through absl) then logs every file it writes."""
    for name in ("absl", "orbax", "jax._src"):
        logging.getLogger(name).setLevel(logging.WARNING)


def log_to_run_file() -> None:
    """The ``tnd`` loggers (metric rows, checkpoints, evaluations, errors) write to the Hydra
    job's log file (``<run folder>/train.log`` for tnd-train) and not to the console, which
    keeps the progress bar and the one-line results. Rebound per job (a multirun reconfigures
    logging for each job)."""
    logger = logging.getLogger("tnd")
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            logger.removeHandler(handler)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def run_dir() -> Path:
    """The Hydra job's output folder (``HydraConfig.get().runtime.output_dir``)."""
    return Path(HydraConfig.get().runtime.output_dir)


def launch_dir() -> Path:
    """The directory the command was launched from (Hydra's ``runtime.cwd``)."""
    return Path(HydraConfig.get().runtime.cwd)


def absolute(path: str) -> str:
    """``path`` resolved against the launch directory when relative."""
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else launch_dir() / p)


def to_object(cfg: DictConfig) -> Any:
    """The schema dataclass instance of a composed config (no Hydra types left)."""
    return OmegaConf.to_object(cfg)


def use_command_line_graph(spec, overrides: list[str] | None = None) -> None:
    """``graph=...`` among the overrides (default: the command line's) replaces a model's own
    topology (a tuned one, ``model.options.topology``)."""
    task = HydraConfig.get().overrides.task if overrides is None else overrides
    if any(o.lstrip("+~").split("=")[0].split(".")[0] == "graph" for o in task):
        for key in ("topology", "topology_options"):
            if key in spec.model.options:
                spec.model.options[key] = None


HYDRA_SPECIAL = set("=,[]{}()'\" :")


def hydra_value(value: str) -> str:
    """``value`` as a Hydra override value: quoted when Hydra's grammar would split it
    (a run folder named ``model=tnd,seed=0`` must stay one path)."""
    if not HYDRA_SPECIAL & set(value):
        return value
    return "'" + value.replace("'", "\\'") + "'"


def shell_word(token: str) -> str:
    """``token`` quoted for a POSIX shell, readably: a Hydra-quoted value keeps its single
    quotes inside double quotes (``"run_dir='a=b,c'"``) instead of ``shlex.quote``'s '"'"'."""
    if "'" in token and not set('"$`\\!') & set(token):
        return f'"{token}"'
    return shlex.quote(token)


def rerun_command(prog: str, folder: Path) -> str:
    """The shell command that reruns this job in ``folder`` (and so resumes it)."""
    task = list(HydraConfig.get().overrides.task)
    return " ".join(shell_word(t) for t in [prog, *task, f"hydra.run.dir={hydra_value(str(folder))}"])


def interrupt_message(exc: BaseException, prog: str, folder: Path) -> str:
    """One line for Ctrl-C: where training stopped, what was saved, how to resume."""
    from tnd.training.loop import TrainingInterrupted

    where = str(exc) if isinstance(exc, TrainingInterrupted) else "interrupted"
    try:
        again = rerun_command(prog, folder)
    except ValueError:  # no Hydra context (called from Python)
        return f"{prog}: {where}"
    verb = "resume" if isinstance(exc, TrainingInterrupted) and exc.checkpoint else "rerun"
    return f"{prog}: {where}; {verb} with: {again}"


def is_multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def _write_error(folder: Path, message: str, identity: dict[str, Any], tb: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"error": message, **identity}
    if tb:
        data["traceback"] = tb
    write_json(folder / ERROR_FILE, data)


@contextlib.contextmanager
def report_errors(folder: Path, identity: dict[str, Any], prog: str,
                  also: Sequence[tuple[Path, dict[str, Any]]] = ()):
    """Bad input -> one line on stderr + ``error.json`` + exit 1 (multirun: job failed, sweep goes on).

    ``also``: more ``(folder, identity)`` pairs that get the same ``error.json`` (the seed
    folders of a ``seeds=[...]`` job, so the table sees each of them failed).
    """
    from tnd.training.loop import TrainingInterrupted
    from tnd.training.runtime import retain_freed_memory

    retain_freed_memory()  # before JAX starts its threads (tnd.training.runtime)
    quiet_libraries()
    log_to_run_file()
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"{prog}: warning: {message}\n"
    log = logging.getLogger("tnd")
    try:
        yield
    except (KeyboardInterrupt, TrainingInterrupted) as exc:
        line = interrupt_message(exc, prog, folder)
        log.warning(line)
        print(line, file=sys.stderr, flush=True)
        sys.exit(130)
    except ValueError as exc:
        message = str(exc) or type(exc).__name__
        log.error(message)
        for where, who in ((folder, identity), *also):
            _write_error(where, message, {**who, "type": type(exc).__name__}, None)
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        if is_multirun():
            print(f"{prog}: job in {folder} failed; see {folder / ERROR_FILE}", file=sys.stderr, flush=True)
            return
        sys.exit(1)
    except Exception as exc:  # a bug: keep the traceback, but leave a record for the table
        log.exception("unexpected error")
        for where, who in ((folder, identity), *also):
            _write_error(where, f"{type(exc).__name__}: {exc}", who, traceback.format_exc())
        raise
