"""The ceiling of behavior cloning on Atari Pong: held-out accuracy of an offline classifier
of the expert's labels from the last k observations, per observation mode and expert.

    python -m experiments.label_ceiling                       # the Atari table's data, both experts
    python -m experiments.label_ceiling --modes objects,ram --k 1,4 data.num_episodes=48
    python -m experiments.label_ceiling --publish             # into results/ instead of outputs/tables/

The datasets are the Atari table's (`experiment=pong_table env=atari_pong`: its games, ε,
stickiness, cap), collected once into the cache like every run's; trailing ``key=value``
words are Hydra overrides of those settings. ``objects`` windows are read from the ``ram``
dataset's bytes (the same function the env uses, so the same games); ``pixels`` has its
own dataset, its frames pooled 4 x 4 (84 x 84 -> 21 x 21) for the classifier.
Outputs ``atari_label_ceiling.{md,csv}`` (``--name``: another stem).
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tnd.app.sweep.plan import OUTPUT_DIR, PUBLISHED_DIR
from tnd.analysis.label_ceiling import history_windows, label_ceiling, pool_frames

PIXEL_POOLING = 4  # 84 x 84 frames -> 21 x 21 classifier features per step


def step_features(mode: str, expert: str, overrides: Sequence[str], progress: bool):
    """``([S, F] float32 per-step features of ``mode``, labels [S], episode_starts [E])`` of
    the table's dataset for ``expert``."""
    from tnd.app.datasets import load_dataset
    from tnd.app.spec import load_spec
    from tnd.envs import get_env
    from tnd.envs.atari_pong import objects_from_ram

    source = "pixels" if mode == "pixels" else "ram"
    spec = load_spec(["experiment=pong_table", "env=atari_pong", f"env.options.obs_mode={source}",
                      "env.options.obs_history=1", f"env.options.expert={expert}", *overrides])
    env = get_env("atari_pong")
    demos = load_dataset(spec.data, env, env.make_config(spec.env.options), progress=progress)
    obs = demos.observations
    if mode == "pixels":
        features = pool_frames(np.asarray(obs, np.float32), PIXEL_POOLING).reshape(len(obs), -1)
    elif mode == "objects":
        features = objects_from_ram(np.rint(np.asarray(obs) * 255.0).astype(np.uint8))
    else:
        features = np.asarray(obs, np.float32)
    return features, np.asarray(demos.actions), np.asarray(demos.episode_starts)


def measure(experts: Sequence[str], modes: Sequence[str], ks: Sequence[int], overrides: Sequence[str],
            progress: bool = True) -> list[dict]:
    rows = []
    bar = tqdm(total=len(experts) * len(modes) * len(ks), desc="ceiling", disable=not progress)
    for expert in experts:
        for mode in modes:
            features, labels, starts = step_features(mode, expert, overrides, progress)
            for k in ks:
                bar.set_postfix(expert=expert, mode=mode, k=k)
                result = label_ceiling(history_windows(features, starts, k), labels, starts)
                rows.append({"expert": expert, "obs_mode": mode, "k": k, "accuracy": result.accuracy,
                             "majority": result.majority, "train_games": result.train_games,
                             "test_games": result.test_games, "train_steps": result.train_steps,
                             "test_steps": result.test_steps})
                bar.update()
    bar.close()
    return rows


def render(rows: Sequence[dict], overrides: Sequence[str]) -> tuple[str, str]:
    """Markdown (one table: rows expert x mode, columns k) and CSV of the measurements."""
    ks = sorted({r["k"] for r in rows})
    first = rows[0]
    lines = [
        "# Label ceiling: held-out accuracy of the expert's labels from the last k observations\n",
        f"Histogram gradient boosting (scikit-learn) fitted on {first['train_games']} games "
        f"(at most 60,000 steps), scored on {first['test_games']} other games; the Atari table's data"
        + (f" with {' '.join(overrides)}" if overrides else "") + ". Pixels: 84 x 84 frames pooled to 21 x 21. "
        "Majority: always the most frequent label.\n",
        "| Expert | Observation | Majority | " + " | ".join(f"k = {k}" for k in ks) + " |",
        "|---|---|---:|" + "---:|" * len(ks),
    ]
    for expert, mode in dict.fromkeys((r["expert"], r["obs_mode"]) for r in rows):
        cells = {r["k"]: r for r in rows if r["expert"] == expert and r["obs_mode"] == mode}
        majority = next(iter(cells.values()))["majority"]
        lines.append(f"| {expert} | {mode} | {majority:.3f} | "
                     + " | ".join(f"{cells[k]['accuracy']:.3f}" if k in cells else "–" for k in ks) + " |")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(first))
    writer.writeheader()
    writer.writerows(rows)
    return "\n".join(lines) + "\n", buffer.getvalue()


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experts", default="lookahead,rule", help="comma-separated: lookahead, rule")
    parser.add_argument("--modes", default="objects,ram,pixels", help="comma-separated: objects, ram, pixels")
    parser.add_argument("--k", default="1,2,4,8", help="comma-separated window lengths (steps)")
    parser.add_argument("--publish", action="store_true", help="write into results/ (else outputs/tables/)")
    parser.add_argument("--name", default="atari_label_ceiling", help="file stem of the outputs (default: %(default)s)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the table's data settings")
    args = parser.parse_args(argv)
    from tnd.envs.atari_pong import EXPERTS, OBS_MODES

    experts, modes = _names(args.experts), _names(args.modes)
    try:
        ks = [int(k) for k in _names(args.k)]
    except ValueError:
        parser.error(f"--k takes comma-separated integers, got {args.k!r}")
    for name, given, valid in (("--experts", experts, EXPERTS), ("--modes", modes, OBS_MODES)):
        unknown = [g for g in given if g not in valid]
        if unknown or not given:
            parser.error(f"{name}: unknown or empty {unknown or given}; valid: {', '.join(valid)}")
    if not ks or min(ks) < 1:
        parser.error(f"--k: window lengths must be >= 1, got {args.k!r}")
    rows = measure(experts, modes, ks, args.overrides)
    markdown, table_csv = render(rows, args.overrides)
    out = Path(PUBLISHED_DIR if args.publish else OUTPUT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.md").write_text(markdown)
    (out / f"{args.name}.csv").write_text(table_csv)
    print(markdown)
    print(f"Wrote {out / args.name}.md and .csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
