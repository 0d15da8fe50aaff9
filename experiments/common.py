"""What the three Hydra entry points share: config conversion, paths, and error reporting.

Library code never sees Hydra objects: `to_spec` turns the composed config into the
library's dataclasses. `report_errors` turns a bad-input error (any ``ValueError``; every
library error subclasses it; or an ``OSError`` about a path: a file in the way, no
permission, a read-only disk) into ONE readable line on stderr plus ``error.json`` in the
run folder, exit status 1; in a multirun the job is marked failed (``error.json``) and the
sweep goes on. Set ``HYDRA_FULL_ERROR=1`` to see the traceback. Unexpected exceptions
(bugs) also write ``error.json`` and then propagate with their traceback. Ctrl-C ends with
one line (the step reached, the last checkpoint, the command that resumes) and exit 130.

Errors Hydra finds itself, before an entry point's code runs (an unknown config group
option, key or override syntax, a value of the wrong type, a run folder it cannot create),
are ONE line too, naming the valid choices and the closest one: importing this module
wraps Hydra's runner once for every ``@hydra.main`` (`install_one_line_errors`).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import logging
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from experiments import running_as_command
from tnd.run_folder import ERROR_FILE, RunFolderBusy, path_problem, write_json

# The config tree at the repository root, as an absolute path: Hydra would otherwise turn a
# relative path into a *module* path when the entry point is imported (console scripts).
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


# ------------------------------------------------------------------ Hydra's own errors, one line each
def full_errors() -> bool:
    """``HYDRA_FULL_ERROR=1``: show Hydra's full report and tracebacks instead of one line."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def closest(name: str, options: Iterable[str]) -> str | None:
    """The option most like ``name`` (a typo's likely meaning), if any is close (difflib)."""
    matches = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.6)
    return matches[0] if matches else None


def conf_options(group: str) -> list[str]:
    """The options of a config group of this project (``conf/<group>/*.yaml``); [] for none."""
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


def unknown_option(group: str, name: str, options: Sequence[str]) -> str:
    """One line for ``group=name`` naming no option of ``group``."""
    match = closest(name, options)
    mean = f" (did you mean {group}={match}?)" if match else ""
    listed = f" Valid {group} options: {', '.join(options)}." if options else ""
    return f"Unknown {group} '{name}'{mean}.{listed}"


def _unknown_key(cause: OmegaConfBaseException) -> str:
    """One line for an override of a key the config does not have, with the keys it has."""
    full_key = str(cause.full_key or cause.key)
    parent, _, name = full_key.rpartition(".")
    keys = [str(k) for k in (cause.parent_node.keys() if cause.parent_node is not None else ()) if k != "hydra"]
    match = closest(name, keys)
    mean = f" (did you mean {parent + '.' if parent else ''}{match}?)" if match else ""
    where = f"Valid keys of {parent}" if parent else "Valid top-level keys"
    add = f"; add a key of your own with +{full_key}=<value>" if cause.object_type is dict else ""
    return f"Unknown key '{full_key}'{mean}. {where}: {', '.join(keys)}{add}."


def _bad_value(cause: ValidationError) -> str:
    """One line for an override whose value has the wrong type, with an example that fits."""
    reason = str(cause).splitlines()[0].rstrip(".")
    example = f" (e.g. {cause.full_key}={cause.child_node})" if cause.child_node is not None else ""
    return f"Bad value for {cause.full_key}: {reason}{example}."


def _flattened(exc: BaseException) -> str:
    """Any other Hydra/OmegaConf report as one line (its own lines joined, the search path left out)."""
    text = str(exc).split("Config search path:")[0]
    parts = [" ".join(text.split())]
    cause = exc.__cause__
    if isinstance(cause, OmegaConfBaseException):
        parts.append(str(cause).splitlines()[0])
    return " ".join(p.rstrip(".") + "." for p in parts if p) or type(exc).__name__


def hydra_error_line(exc: BaseException) -> str | None:
    """ONE readable line for an error Hydra raises while composing the config or preparing
    the job folder (before the command's own code runs); None for anything else."""
    cause = exc.__cause__
    if isinstance(exc, MissingConfigException) and exc.options is not None and exc.missing_cfg_file:
        group, _, name = str(exc.missing_cfg_file).rpartition("/")
        return unknown_option(group, name, list(exc.options))
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and cause.full_key:
        return _unknown_key(cause)
    if isinstance(cause, ValidationError) and cause.full_key:
        return _bad_value(cause)
    if isinstance(exc, OverrideParseException):
        return (f"Cannot read the override '{exc.override}' ({str(exc.message).splitlines()[0]}): write key=value "
                "or group=option, and quote a value that holds special characters ('a,b=c').")
    path_error = next((e for e in _causes(exc) if isinstance(e, OSError) and e.filename), None)
    if path_error is not None:  # hydra.run.dir under a file, a run folder (or its train.log) you cannot write
        return path_problem(path_error)
    if isinstance(exc, (HydraException, OmegaConfBaseException)):
        return _flattened(exc)
    return None


def _causes(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (``__cause__``/``__context__``)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def group_value_problem(overrides: Sequence[str]) -> str | None:
    """One line for a config-group override whose value is a path (``model=../env/pong``):
    Hydra would load that file, from another group, as the group's option."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return None  # a syntax error: Hydra's own report of it is made one line (hydra_error_line)
    for override in parsed:
        group = override.key_or_group
        options = conf_options(group)
        if override.is_delete() or not (options or group.startswith("hydra/")):
            continue
        if override.value_type == ValueType.ELEMENT:
            values = [override.get_value_element_as_str()]
        elif override.value_type in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
            values = list(override.sweep_string_iterator())
        else:
            continue
        for value in values:
            if "/" in value or "\\" in value or value.startswith(".."):
                listed = f" Valid {group} options: {', '.join(options)}." if options else ""
                return (f"{group}={value}: a config group takes the name of one of its options, not a path "
                        f"(the files of conf/{group}/, named without .yaml).{listed}")
    return None


def _raised_in(exc: BaseException, function: Callable) -> bool:
    """Whether ``function``'s code is on ``exc``'s traceback (it came from the command's own code)."""
    code = getattr(function, "__code__", None)
    return any(frame.f_code is code for frame, _ in traceback.walk_tb(exc.__traceback__))


def _one_line(func: Callable[[], Any], prog: str, task_function: Callable) -> Any:
    """Runs one of Hydra's steps; an error Hydra raises itself becomes one line and exit 1."""
    try:
        return func()
    except Exception as exc:
        line = None if full_errors() or _raised_in(exc, task_function) else hydra_error_line(exc)
        if line is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr, flush=True)
        sys.exit(1)


def _one_line_run_hydra(run_hydra: Callable[..., None]) -> Callable[..., None]:
    """Hydra's ``_run_hydra`` (what every ``@hydra.main`` calls) with one-line errors."""
    import inspect

    signature = inspect.signature(run_hydra)

    @functools.wraps(run_hydra)
    def wrapped(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        prog = str(bound.arguments.get("config_name") or "hydra").replace("_", "-")
        problem = None if full_errors() else group_value_problem(bound.arguments["args"].overrides)
        if problem:
            print(f"{prog}: error: {problem}", file=sys.stderr, flush=True)
            sys.exit(1)
        utils = importlib.import_module("hydra._internal.utils")
        report = utils.run_and_report
        task = bound.arguments["task_function"]
        utils.run_and_report = lambda func: report(functools.partial(_one_line, func, prog, task))
        try:  # Hydra's steps report through run_and_report; --help and --info do not
            return _one_line(functools.partial(run_hydra, *args, **kwargs), prog, task)
        finally:
            utils.run_and_report = report

    wrapped.one_line_errors = True
    return wrapped


def install_one_line_errors() -> None:
    """Makes the errors Hydra reports itself (5-16 lines: an unknown option, key or value, a
    folder it cannot create) ONE line on stderr, exit 1, for every ``@hydra.main`` of this
    process: the valid choices, the closest one. ``HYDRA_FULL_ERROR=1`` keeps Hydra's report.
    Wraps ``hydra.main._run_hydra`` (hydra-core is pinned in pyproject.toml); idempotent."""
    module = importlib.import_module("hydra.main")
    if not getattr(module._run_hydra, "one_line_errors", False):
        module._run_hydra = _one_line_run_hydra(module._run_hydra)


install_one_line_errors()


# ------------------------------------------------------------------ ending a command
def exit_now(status: int) -> NoReturn:
    """Ends the command with ``status`` once its output is out.

    A console command exits at once (``os._exit``): the interpreter's teardown after an
    interrupted JAX computation can crash (SIGSEGV) while XLA's threads still run, and
    libraries' exit hooks may print. Called in-process (tests, notebooks): ``SystemExit``.
    """
    if not running_as_command():
        sys.exit(status)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


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
    """``<folder>/error.json``, where the folder can be written (the error may be that it cannot)."""
    data = {"error": message, **identity}
    if tb:
        data["traceback"] = tb
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / ERROR_FILE, data)


def bad_input_message(exc: BaseException) -> str | None:
    """The one line for an error the user can fix: any ``ValueError`` (every library error),
    or an ``OSError`` about a path (`tnd.run_folder.path_problem`); None for a bug."""
    if isinstance(exc, ValueError):
        return " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename:
        return path_problem(exc)
    return None


@contextlib.contextmanager
def report_errors(folder: Path, identity: dict[str, Any], prog: str,
                  also: Sequence[tuple[Path, dict[str, Any]]] = ()):
    """Bad input -> one line on stderr + ``error.json`` + exit 1 (multirun: job failed, sweep goes on).

    ``also``: more ``(folder, identity)`` pairs that get the same ``error.json`` (the seed
    folders of a ``seeds=[...]`` job, so the table sees each of them failed).
    """
    from tnd.training.interrupts import interrupted, interrupts_recorded
    from tnd.training.loop import TrainingInterrupted
    from tnd.training.runtime import retain_freed_memory

    retain_freed_memory()  # before JAX starts its threads (tnd.training.runtime)
    quiet_libraries()
    log_to_run_file()
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"{prog}: warning: {message}\n"
    log = logging.getLogger("tnd")
    try:
        with interrupts_recorded():
            try:
                yield
            except Exception as exc:
                if interrupted() and not isinstance(exc, TrainingInterrupted):  # a Ctrl-C that a library
                    raise KeyboardInterrupt from exc  # turned into its own error (Hydra, OmegaConf)
                raise
            if interrupted():  # a Ctrl-C that a library swallowed (tnd.training.interrupts)
                raise KeyboardInterrupt
    except (KeyboardInterrupt, TrainingInterrupted) as exc:
        line = interrupt_message(exc, prog, folder)
        log.warning(line)
        print(line, file=sys.stderr, flush=True)
        exit_now(130)
    except RunFolderBusy as exc:  # the folder is another process's: nothing is written into it
        if full_errors():
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        if not is_multirun():
            sys.exit(1)
    except Exception as exc:
        message = bad_input_message(exc)
        if message is None:  # a bug: keep the traceback, but leave a record for the table
            log.exception("unexpected error")
            for where, who in ((folder, identity), *also):
                _write_error(where, f"{type(exc).__name__}: {exc}", who, traceback.format_exc())
            raise
        log.error(message)
        tb = traceback.format_exc() if isinstance(exc, OSError) else None
        for where, who in ((folder, identity), *also):
            _write_error(where, message, {**who, "type": type(exc).__name__}, tb)
        if full_errors():
            raise
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        if is_multirun():
            print(f"{prog}: job in {folder} failed; see {folder / ERROR_FILE}", file=sys.stderr, flush=True)
            return
        sys.exit(1)
