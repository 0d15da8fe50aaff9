"""Planning a sweep: the jobs of an experiment's ``hydra.sweeper.params``, their identities, and
as few multirun groups as cover the jobs still to run.

A *job* is a list of override lines (``["model=lstm", "seed=0", "experiment=pong_table"]``);
its identity is its values of the swept keys (``("lstm", 0)``), which name its run folder
(`job_dirname`) and, but for the seed, its row of the table.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from tnd.evaluation.table import MODEL_KEY, SEED_KEY, STACKED_SEEDS_KEY, TableError
from tnd.run_folder import override_key, write_json

DEFAULT_EXPERIMENT = "pong_table"
DEFAULT_SCALE = "default"
DAGGER_ROUNDS_KEY = "dagger.rounds"  # > 0: the seeds of a job train one after another (`stacks_seeds`)
SWEEP_FILE = "sweep.json"
OUTPUT_DIR = Path("outputs") / "tables"  # a user's tables (ignored by git)
PUBLISHED_DIR = Path("results")          # the committed tables and figures (--publish refreshes them)
SWEPT_KEYS = (MODEL_KEY, SEED_KEY)  # swept by every table sweep; an experiment may sweep more keys
NEVER_ROW_KEYS = ("experiment", "scale", "data.root", "data.num_workers")  # never rows when rows are inferred from run folders


class SweepError(TableError):
    """The sweep cannot be planned or resumed as asked."""


def parse_overrides(overrides: Sequence[str]):
    """Hydra's parsed form of override lines; a malformed line is a `SweepError`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise SweepError(f"Bad override: {exc}") from exc


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str], str]:
    """(task overrides, hydra overrides, scale) from a sweep's command-line overrides."""
    task, hydra_, scale = [], [], DEFAULT_SCALE
    for raw, override in zip(overrides, parse_overrides(overrides)):
        key = override.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            hydra_.append(raw)
            continue
        if key == "experiment":
            raise SweepError("Pass the experiment as --experiment NAME, not as an override.")
        if key == "scale":
            if override.is_sweep_override():
                raise SweepError(f"Sweep one scale at a time (got '{raw}'); each scale has its own sweep folder.")
            scale = override.get_value_element_as_str()
        task.append(raw)
    return task, hydra_, scale


def fixed_overrides(task: Sequence[str]) -> list[str]:
    """The overrides that take one value (what composes the sweep's config)."""
    return [o for o, p in zip(task, parse_overrides(task)) if not p.is_sweep_override()]


def output_name(experiment: str, env: str | None, scale: str) -> str:
    """File stem of a table: experiment, environment and scale (``pong_table-pong-default``)."""
    return "-".join(part for part in (experiment, env, scale) if part)


def default_sweep_dir(experiment: str, env: str | None, scale: str) -> Path:
    """``multirun/<experiment>/<env>/<scale>``: one sweep folder per environment and scale."""
    return Path("multirun", experiment, *([env] if env else []), scale)


def swept_keys(params: dict) -> tuple[str, ...]:
    """The sweep's identity keys: ``model``, the other keys of ``hydra.sweeper.params`` in
    their order, then ``seed`` (``("model", "seed")`` for the Pong table).

    Every job sets them all; they name its run folder, and every combination of their
    values but the seed is one row (variant) of the table. A key stays one even when the
    command line narrows it to one value, so the folder is the same as in the full sweep.
    """
    declared = [override_key(str(k)) for k in params]
    return (MODEL_KEY, *dict.fromkeys(k for k in declared if k not in SWEPT_KEYS), SEED_KEY)


def plan_jobs(params: dict, experiment: str, task: list[str]) -> list[list[str]]:
    """Every job's overrides, expanded exactly as Hydra's basic sweeper does.

    Only the keys of ``hydra.sweeper.params`` (and model, seed) may take several values;
    a key swept on the command line alone would give rows the experiment does not declare.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    lines = [f"{k}={v}" for k, v in params.items()] + [f"experiment={experiment}", *task]
    jobs = BasicSweeper.split_arguments(parse_overrides(lines), None)[0]
    for job in jobs:
        absent = [k for k in SWEPT_KEYS if k not in {override_key(o) for o in job}]
        if absent:
            raise SweepError(
                f"The sweep must set {' and '.join(absent)} for every job: add them to "
                f"hydra.sweeper.params in conf/experiment/{experiment}.yaml or pass e.g. model=tnd,lstm seed=0,1."
            )
    keys = swept_keys(params)
    varying = sorted({override_key(o) for o in jobs[0]} - set(keys)) if jobs else []
    varying = [k for k in varying if len({next(o for o in j if override_key(o) == k) for j in jobs}) > 1]
    if varying:
        raise SweepError(
            f"The table's rows are the keys swept in conf/experiment/{experiment}.yaml ({', '.join(keys)}), "
            f"but {', '.join(varying)} also varies; add it to hydra.sweeper.params there, "
            "or run one tnd-table per value (with its own --sweep-dir)."
        )
    return [list(job) for job in jobs]


def job_values(job: list[str]) -> dict[str, str]:
    """``{key: value}`` of a job's override lines."""
    return {override_key(o): o.partition("=")[2] for o in job}


def job_id(job: list[str], keys: Sequence[str] = SWEPT_KEYS) -> tuple:
    """The job's values of ``keys`` (seed last, as an int): ``("tnd", 0)`` in the Pong table."""
    values = job_values(job)
    try:
        return (*(values[k] for k in keys[:-1]), int(values[keys[-1]]))
    except ValueError as exc:
        raise SweepError(f"Seeds must be integers, got seed={values[keys[-1]]}.") from exc


def job_dirname(job: list[str], keys: Sequence[str]) -> str:
    """The run folder name of a job: its lines of ``keys``, sorted and joined by commas
    (``model=lstm,seed=0``), as Hydra's ``override_dirname`` names a multirun job."""
    return ",".join(sorted(o for o in job if override_key(o) in keys))


def _products(ids: Sequence[tuple]) -> list[tuple[tuple, ...]]:
    """Disjoint cartesian products that cover exactly the identities ``ids`` (n-tuples).

    Recursively on the first position: the values whose remaining tuples are the same set
    are swept together, so a full grid is one product and a grid missing a few jobs a few.
    Returns one tuple of per-position value tuples per product (first-seen order).
    """
    if not ids:
        return []
    if len(ids[0]) == 0:
        return [()]
    tails_of: dict = {}
    for ident in ids:
        tails_of.setdefault(ident[0], []).append(ident[1:])
    heads_of: dict = {}
    for head, tails in tails_of.items():
        heads_of.setdefault(frozenset(tails), []).append(head)
    out = []
    for head, tails in tails_of.items():
        heads = heads_of.get(frozenset(tails))
        if heads is None or heads[0] != head:
            continue  # swept with the first head of the same tails
        out += [(tuple(heads), *rest) for rest in _products(list(dict.fromkeys(tails)))]
    return out


def _group_lines(first_job: list[str], keys: Sequence[str], product: tuple[tuple, ...]) -> list[str]:
    """The multirun overrides of one product: the fixed lines, then ``key=a,b`` per swept key."""
    fixed = [o for o in first_job if override_key(o) not in keys]
    raw_key = {override_key(o): o.partition("=")[0] for o in first_job}
    return [*fixed, *(f"{raw_key[k]}=" + ",".join(str(v) for v in (sorted(vs) if k == SEED_KEY else vs))
                      for k, vs in zip(keys, product))]


def _covering(jobs: list[list[str]], keys: Sequence[str]) -> list[tuple[list[str], list[list[str]]]]:
    """``(multirun overrides, the jobs they run)`` for each product covering ``jobs``."""
    ids = [job_id(j, keys) for j in jobs]
    return [(_group_lines(jobs[0], keys, product),
             [j for j, i in zip(jobs, ids) if all(v in vs for v, vs in zip(i, product))])
            for product in _products(ids)]


def group_jobs(jobs: list[list[str]], keys: Sequence[str] = SWEPT_KEYS) -> list[list[str]]:
    """Few multirun override lists (fixed ones + ``key=a,b`` per swept key) covering exactly ``jobs``."""
    return [lines for lines, _ in _covering(jobs, keys)] if jobs else []


def stacks_seeds(job: list[str], dagger_rounds: int = 0) -> bool:
    """Whether this job's seeds can train as one program: its model's structure does not
    depend on the seed (`tnd.app.experiment.graph_in_structure`), or ``graph.seed`` fixes the
    graph for every seed. `tnd.app.run_seeds` trains any that cannot one after another.

    A job with DAgger rounds (its ``dagger.rounds`` override, else ``dagger_rounds``: the
    sweep's composed value) does not stack either: each seed's student plays its own games
    between rounds, so one ``seeds=[...]`` job would train its seeds one after another, while
    separate jobs run side by side.
    """
    from tnd.app.experiment import graph_in_structure

    values = job_values(job)
    rounds = values.get(DAGGER_ROUNDS_KEY, dagger_rounds)
    try:
        if int(rounds) > 0:
            return False
    except (TypeError, ValueError):
        raise SweepError(f"{DAGGER_ROUNDS_KEY} must be an integer >= 0 (0: no DAgger), got {rounds!r}.") from None
    if values.get("graph.seed") not in (None, "null", ""):
        return True
    wired = next((v.lower() == "true" for k, v in values.items() if k.endswith("options.wired")), None)
    return not graph_in_structure(values[MODEL_KEY], wired)


@dataclasses.dataclass(frozen=True)
class LaunchGroup:
    """One multirun that covers some pending jobs: ``overrides`` (fixed lines, ``key=a,b`` per
    swept key, and ``seeds=[...]`` when ``stacked``: each model's seeds as one program, in
    ``<job folder>/seed=<k>/``), the ``jobs`` it covers, and the keys naming their folders."""

    overrides: list[str]
    jobs: list[list[str]]
    stacked: bool
    keys: tuple[str, ...]

    @property
    def folder_keys(self) -> tuple[str, ...]:
        """The keys that name the job folders (a stack's seeds live below its folder)."""
        return tuple(k for k in self.keys if k != SEED_KEY) if self.stacked else self.keys


def launch_groups(pending: list[list[str]], keys: Sequence[str], stack_seeds: bool,
                  dagger_rounds: int = 0) -> list[LaunchGroup]:
    """The multiruns covering ``pending``: with ``stack_seeds`` a model's jobs whose seeds can
    share one program (`stacks_seeds`; ``dagger_rounds`` the sweep's composed value) become
    one job per model (``tnd-train seeds=[...]``)."""
    keys = tuple(keys)
    together = [stack_seeds and stacks_seeds(j, dagger_rounds) for j in pending]
    out = []
    for stacked in (False, True):
        jobs = [j for j, t in zip(pending, together) if t == stacked]
        for lines, covered in (_covering(jobs, keys) if jobs else []):
            if stacked:
                *rest, seed_line = lines  # the seed is the last swept key
                seed_key, _, seeds = seed_line.partition("=")
                lines = [*rest, f"{seed_key}={seeds.split(',')[0]}", f"{STACKED_SEEDS_KEY}=[{seeds}]"]
            out.append(LaunchGroup(lines, covered, stacked, keys))
    return out


def write_sweep_file(sweep_dir: Path, experiment: str, overrides: list[str], jobs: list[list[str]],
                     keys: Sequence[str] = SWEPT_KEYS) -> Path:
    """``sweep.json``: the planned jobs, models, seeds, swept keys and variants (rows)."""
    ids = [job_id(j, keys) for j in jobs]
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    return write_json(Path(sweep_dir) / SWEEP_FILE, {
        "experiment": experiment,
        "overrides": overrides,
        "models": list(dict.fromkeys(i[0] for i in ids)),
        "seeds": sorted({i[-1] for i in ids}),
        "keys": list(keys),
        "variants": [list(v) for v in dict.fromkeys(i[:-1] for i in ids)],
        "jobs": jobs,
    })


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the sweep expects, for the aggregation (None: not known, use what is found)."""

    row_keys: tuple[str, ...] | None  # swept keys but the seed
    variants: list[list[str]] | None
    models: list[str] | None
    seeds: list[int] | None


def expected_runs(sweep_dir: Path, models: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> Expected:
    """The runs a sweep folder expects, from its ``sweep.json`` (``models``/``seeds`` given
    here replace those recorded)."""
    row_keys = variants = expected_models = expected_seeds = None
    sweep_file = Path(sweep_dir) / SWEEP_FILE
    if sweep_file.is_file():
        try:
            data = json.loads(sweep_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SweepError(f"Cannot read {sweep_file}: {exc}. Delete it (or rerun the sweep) and retry.") from exc
        expected_models, expected_seeds = data.get("models"), data.get("seeds")
        if data.get("keys"):
            row_keys, variants = tuple(data["keys"][:-1]), data.get("variants")
    return Expected(row_keys, variants, list(models) if models else expected_models,
                    list(seeds) if seeds else expected_seeds)
