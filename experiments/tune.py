"""`tnd-tune`: one model's equal-effort hyperparameter study (Optuna), configured by Hydra.

    tnd-tune model=tnd                         # conf/tune/tnd.yaml; resumes the study if it exists
    tnd-tune model=lstm                        # same trials, sampler and pruner for every model
    tnd-tune model=tnd study.storage=/nfs/tnd/studies.db   # several workers/machines, one study
    tnd-tune -m model=tnd worker=0,1 hydra/launcher=local_parallel   # two workers on this machine, one study
    tnd-tune model=tnd write_tuned=false       # search only; keep conf/tuned/ as it is
    tnd-tune summarize_only=true               # every study's trials and best value (results/tuning/studies.md)

Each trial composes ``tnd-train experiment=<experiment> scale=<scale> tuned=none
seed=<trial.seed_base + trial number> <overrides> <sampled values>``: it trains as long as
the table's runs, at the table's parameter budget, on its own seed (a TND graph and every
model's initial weights are the model's randomness, never a tuned value), and is scored by its
closed-loop catch rate on **validation** games: the trial's final evaluation plays
``eval.validation_seed``'s games and its periodic (pruning) evaluations another validation
stream; the table's test games (``eval.seed``) are never played. When the study has its
trials, the winner is written to ``conf/tuned/<model>.yaml`` (which ``tnd-train`` and the
table apply by default; ``tuned=none`` turns it off; a searched topology becomes the
model's own ``model.options.topology``, which ``graph=`` on the command line replaces), and
the study summary and all trials to ``results/tuning/``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import hydra
import yaml
from omegaconf import DictConfig, OmegaConf

from experiments import schema  # noqa: F401  (registers the structured configs)
from experiments.common import CONF_DIR, absolute, report_errors



def load_space(model: str):
    """The search space of ``model`` from ``conf/tune/<model>.yaml``."""
    from tnd.tuning import SearchSpace, TuneError

    path = Path(CONF_DIR) / "tune" / f"{model}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise TuneError(f"No search space for model '{model}' ({path} is missing). Spaces: {', '.join(known)}.")
    data = yaml.safe_load(path.read_text()) or {}
    if set(data) - {"space"}:
        raise TuneError(f"{path}: only 'space:' belongs in a model's file; study settings are shared (conf/tnd_tune.yaml).")
    return SearchSpace.from_dict(data.get("space") or {})


def trial_overrides(cfg: DictConfig, extra: list[str]) -> list[str]:
    """The tnd-train overrides of one trial: the table's experiment and scale, untuned, ``extra`` last."""
    return [f"model={cfg.model.name}", f"experiment={cfg.trial.experiment}", f"scale={cfg.trial.scale}",
            "tuned=none", *cfg.trial.overrides, *extra]


def trial_spec(cfg: DictConfig, extra: list[str]):
    """The ExperimentSpec of one trial, with its evaluations moved onto validation games."""
    from tnd.app.spec import SpecError, load_spec
    from tnd.tuning import TuneError

    try:
        spec = load_spec(trial_overrides(cfg, extra), base_dir=absolute("."))
    except SpecError as exc:
        raise TuneError(f"A trial trains one seed: {exc}") from exc
    test_seed, validation = int(spec.eval.seed), int(spec.eval.validation_seed)
    if test_seed in (validation, validation + 1):
        raise TuneError(f"eval.validation_seed={validation} collides with the test games (eval.seed={test_seed}).")
    spec.eval.seed, spec.eval.validation_seed = validation, validation + 1  # objective, pruning
    spec.train.progress = False
    return spec, test_seed


def write_results(cfg: DictConfig, study, settings, space) -> dict[str, Any]:
    """conf/tuned/<model>.yaml and results/tuning/<model>.json, <model>_trials.csv."""
    from tnd.tuning import study_summary, tuned_config

    summary = study_summary(study, settings)
    values, groups = tuned_config(study, space, settings.n_trials)
    header = (
        f"# @package _global_\n# Tuned by `tnd-tune model={cfg.model.name}` on {dt.date.today().isoformat()}: study "
        f"'{summary['study']}', {summary['finished']} finished trials\n# ({summary['trials']['complete']} complete, "
        f"{summary['trials']['pruned']} pruned), {summary['sampler']}, {summary['pruner']}.\n# Best trial "
        f"{summary['best_trial']}: validation catch rate {summary['best_value']:.3f} at scale={cfg.trial.scale} "
        f"(results/tuning/{cfg.model.name}.json). tuned=none turns this file off.\n"
    )
    conf_dir = Path(absolute(cfg.conf_dir)) if cfg.conf_dir else Path(CONF_DIR)
    if "graph" in groups:  # a model's own topology: tuned files cannot select a config group
        graph = yaml.safe_load((Path(CONF_DIR) / "graph" / f"{groups['graph']}.yaml").read_text())
        values.setdefault("model", {}).setdefault("options", {}).update(
            topology=graph["name"], topology_options=dict(graph.get("options") or {})
        )
    (conf_dir / "tuned").mkdir(parents=True, exist_ok=True)
    (conf_dir / "tuned" / f"{cfg.model.name}.yaml").write_text(header + (yaml.safe_dump(values, sort_keys=False) if values else ""))
    results = Path(absolute(cfg.results_dir))
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{cfg.model.name}.json").write_text(json.dumps({**summary, "groups": groups}, indent=2, default=str) + "\n")
    write_trials_csv(study, results / f"{cfg.model.name}_trials.csv")
    return summary


def write_trials_csv(study, path: Path) -> None:
    """One row per trial: number, state, value, seconds, every sampled parameter."""
    import csv

    trials = study.get_trials(deepcopy=False)
    keys = list(dict.fromkeys(k for t in trials for k in t.params))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", "value", "seconds", *keys])
        for t in trials:
            seconds = t.duration.total_seconds() if t.duration else ""
            writer.writerow([t.number, t.state.name.lower(), "" if t.value is None else t.value, seconds,
                             *(t.params.get(k, "") for k in keys)])


def studies_markdown(results_dir: Path) -> str:
    """One row per study summary in ``results_dir`` (``<model>.json``): trials and best value."""
    rows = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    if not rows:
        from tnd.tuning import TuneError

        raise TuneError(f"No study summaries in {results_dir}: run tnd-tune model=<model> first.")
    lines = [
        "| Study | Finished trials (complete / pruned) | Failed (not counted) | Best validation catch rate | "
        "Best trial's catches / round | Parameters | Best parameters |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        params = ", ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in r["best_params"].items())
        lines.append(
            f"| {r['study']} | {r['finished']} ({r['trials']['complete']} / {r['trials']['pruned']}) | "
            f"{r['trials']['fail']} | {r['best_value']:.3f} | {r['best_attrs'].get('catches_per_round', float('nan')):.2f} | "
            f"{r['best_attrs'].get('num_params', '')} | {params} |"
        )
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="tnd_tune")
def main(cfg: DictConfig) -> dict | None:
    from tnd.tuning import StudySettings, open_study, run_study, study_summary

    if cfg.summarize_only:  # no study: the table of every study summary in results_dir
        with report_errors(Path(absolute(cfg.results_dir)), {}, "tnd-tune"):
            results = Path(absolute(cfg.results_dir))
            text = studies_markdown(results)
            (results / "studies.md").write_text(text)
            print(text, end="")
        return None
    trials_dir = Path(absolute(cfg.trials_dir))
    with report_errors(trials_dir, {"model": cfg.model.name, "study": cfg.study.name}, "tnd-tune"):
        from tnd.app.experiment import run_experiment

        space = load_space(str(cfg.model.name))
        study_cfg = OmegaConf.to_container(cfg.study, resolve=True)
        study_cfg["storage"] = absolute(study_cfg["storage"])
        schedule = trial_spec(cfg, [])[0].train  # bad settings fail here, before any study is touched
        study_cfg["max_resource"] = study_cfg["max_resource"] or schedule.steps
        first_report = schedule.eval_every if 0 < schedule.eval_every <= schedule.steps else schedule.steps
        study_cfg["min_resource"] = study_cfg["min_resource"] or min(first_report, study_cfg["max_resource"])
        settings = StudySettings(**study_cfg)

        def run_trial(overrides, number, report):
            extra = [f"seed={int(cfg.trial.seed_base) + number}", *overrides]
            spec, test_seed = trial_spec(cfg, extra)
            summary = run_experiment(spec, trials_dir / f"trial_{number:03d}", overrides=trial_overrides(cfg, extra),
                                     on_eval=lambda step, m: report(step, m["catch_rate"]))
            attrs = {k: summary[k] for k in ("catches_per_round", "num_params", "train_seconds", "config_hash")}
            return float(summary["catch_rate"]), {**attrs, "seed": spec.seed, "train_steps": summary["train_steps"],
                                                  "validation_seed": spec.eval.seed, "test_seed_avoided": test_seed}

        study = open_study(settings, worker=int(cfg.worker))
        run_study(study, settings, space, run_trial,
                  log=lambda line: print(f"tnd-tune: {line}", file=sys.stderr, flush=True))
        summary = write_results(cfg, study, settings, space) if cfg.write_tuned else study_summary(study, settings)
        print(best_trial_line(summary, cfg), flush=True)
        return summary
    return None


def best_trial_line(summary: dict[str, Any], cfg: DictConfig) -> str:
    """The study's result in one line: the best trial, its score and where the winner went."""
    params = ", ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in summary["best_params"].items())
    where = (f"written to conf/tuned/{cfg.model.name}.yaml and {cfg.results_dir}/{cfg.model.name}.json"
             if cfg.write_tuned else "not written (write_tuned=false)")
    return (f"tnd-tune: study '{summary['study']}': {summary['finished']} finished trials "
            f"({summary['reached_full_length']} at full length); best trial {summary['best_trial']}: validation catch "
            f"rate {summary['best_value']:.3f} ({params}); {where}")


if __name__ == "__main__":
    main()
