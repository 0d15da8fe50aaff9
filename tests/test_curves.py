"""Learning curves: synthetic run folders' metrics.jsonl -> per-model curves, plateau, outputs, CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from experiments import curves as cli
from tnd.evaluation import curves as crv

T975_DF2 = 4.302652729911275  # t_{0.975, 2}


def _run(root: Path, model: str, seed: int, evals: dict[int, float], *, finished: bool = True,
         extra_rows: tuple[dict, ...] = ()) -> Path:
    """A Hydra job folder whose metrics.jsonl holds training rows and eval rows at ``evals``' steps."""
    run = root / f"model={model},seed={seed}"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"model={model}", f"seed={seed}"]))
    rows = [{"step": s, "loss": 1.0 / s} for s in sorted(evals)]  # training rows at other columns
    rows += [{"step": s, "loss": 1.0 / s, "eval_catch_rate": v, "eval_catches_per_round": 10 * v}
             for s, v in evals.items()]
    rows += list(extra_rows)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 9')  # + a cut line
    if finished:
        (run / "summary.json").write_text(json.dumps({"model": model, "seed": seed}))
    return run


@pytest.fixture
def sweep(tmp_path) -> Path:
    """lstm: 3 seeds rising then flat from step 300; tnd: 2 seeds still rising; rnn: unfinished."""
    root = tmp_path / "multirun" / "learning_curves" / "default"
    for seed, offset in enumerate([-0.1, 0.0, 0.1]):
        _run(root, "lstm", seed, {100: 0.3 + offset, 200: 0.6 + offset, 300: 0.8 + offset, 400: 0.81 + offset})
    _run(root, "tnd", 0, {100: 0.1, 200: 0.2, 300: 0.3, 400: 0.4})
    _run(root, "tnd", 1, {100: 0.05, 200: 0.15, 300: 0.35})  # one evaluation fewer
    _run(root, "rnn", 0, {100: 0.5}, finished=False)
    return root


def test_plateau_rule():
    steps = [100, 200, 300, 400, 500]
    assert crv.plateau_step(steps, [0.1, 0.5, 0.80, 0.81, 0.79]) == 300  # later gains <= 0.02
    assert crv.plateau_step(steps, [0.1, 0.5, 0.80, 0.81, 0.83]) == 400  # 0.80 -> 0.83 beats the tolerance
    assert crv.plateau_step(steps, [0.1, 0.2, 0.3, 0.4, 0.5]) == 500  # still rising: the last step
    assert crv.plateau_step(steps, [0.9, 0.5, 0.6, 0.7, 0.91]) == 100  # a dip does not move it
    assert crv.plateau_step(steps, [0.1, 0.5, 0.80, 0.81, 0.83], tolerance=0.05) == 300
    assert crv.plateau_step(steps, [0.1, math.nan, 0.8, 0.8, 0.8]) == 300
    with pytest.raises(crv.CurveError):
        crv.plateau_step(steps, [0.1, 0.2])


def test_collect_and_aggregate(sweep):
    runs, skipped = crv.collect_curves(sweep)
    assert sorted((r.model, r.seed) for r in runs) == [("lstm", 0), ("lstm", 1), ("lstm", 2), ("tnd", 0), ("tnd", 1)]
    assert [(r.model, r.status) for r in skipped] == [("rnn", "unfinished")]
    lstm0 = next(r for r in runs if (r.model, r.seed) == ("lstm", 0))
    assert lstm0.steps == (100, 200, 300, 400) and lstm0.values == pytest.approx((0.2, 0.5, 0.7, 0.71))

    curves = crv.aggregate_curves(runs, clip=crv.RATE_RANGE)
    assert [c.model for c in curves] == ["tnd", "lstm"]  # the table's model order
    tnd, lstm = curves
    assert lstm.steps.tolist() == [100, 200, 300, 400] and lstm.n.tolist() == [3, 3, 3, 3]
    assert lstm.mean == pytest.approx([0.3, 0.6, 0.8, 0.81])
    half = T975_DF2 * 0.1 / math.sqrt(3)  # s = 0.1 over seeds at every step
    assert lstm.lo == pytest.approx([0.3 - half, 0.6 - half, 0.8 - half, 0.81 - half])
    assert lstm.hi[-1] == 1.0 and lstm.hi[0] == pytest.approx(0.3 + half)  # 0.81 + 0.248 clipped to 1
    assert crv.plateau_step(lstm.steps, lstm.mean) == 300
    assert tnd.n.tolist() == [2, 2, 2, 1] and tnd.mean[-1] == pytest.approx(0.4)
    assert math.isnan(tnd.lo[-1]) and math.isnan(tnd.hi[-1])  # one seed: no interval
    assert crv.plateau_step(tnd.steps, tnd.mean) == 400

    unclipped = crv.aggregate_curves(runs)
    assert unclipped[1].hi[-1] == pytest.approx(0.81 + half)

    all_runs, _ = crv.collect_curves(sweep, statuses=("ok", "unfinished"))
    assert ("rnn", 0) in {(r.model, r.seed) for r in all_runs}


def test_outputs(sweep, tmp_path):
    runs, skipped = crv.collect_curves(sweep)
    curves = crv.aggregate_curves(runs, clip=crv.RATE_RANGE)
    with crv.write_curves_csv(curves, tmp_path / "c.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == ("model", "step", "mean", "lo", "hi", "n_seeds")
    assert len(rows) == 8 and rows[-1]["model"] == "lstm" and float(rows[-1]["hi"]) == 1.0
    assert (rows[3]["step"], rows[3]["lo"], rows[3]["n_seeds"]) == ("400", "", "1")

    md = crv.render_curves_markdown(curves, skipped=skipped)
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "| 400 (not reached) |" in lines["TND"] and "0.400 [n/a]" in lines["TND"]
    assert "| 3 | 300 |" in lines["LSTM"] and "0.810 [" in lines["LSTM"] and "(400)" in lines["LSTM"]
    assert "clipped to [0, 1]" in md and "validation games" in md and "Vanilla RNN seed 0 (unfinished)" in md

    png = crv.plot_curves(curves, tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_writes_three_files(sweep, tmp_path, capsys):
    results = tmp_path / "results"
    assert cli.main(["--sweep-dir", str(sweep), "--results-dir", str(results)]) == 0
    for ext in ("png", "csv", "md"):
        assert (results / f"validation_curves-pong-default.{ext}").stat().st_size > 0
    out = capsys.readouterr().out
    assert "| LSTM | 3 | 300 |" in out and "wrote" in out


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["--sweep-dir", str(tmp_path / "none"), "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tnd-curves: error:") and "does not exist" in err and "Traceback" not in err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["--sweep-dir", str(empty), "--results-dir", str(tmp_path / "r")]) == 2
    assert "No 'eval_catch_rate' rows" in capsys.readouterr().err

    no_evals = tmp_path / "no_evals"  # runs trained with train.eval_every=0: training rows only
    _run(no_evals, "lstm", 0, {})
    assert cli.main(["--sweep-dir", str(no_evals), "--results-dir", str(tmp_path / "r")]) == 2
    assert "train.eval_every > 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_help_names_the_outputs(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--sweep-dir" in out and "learning_curves" in out and "plateau" in out


def test_t_interval_matches_the_table():
    from tnd.evaluation import table as tbl

    values = [0.2, 0.35, 0.9, 0.4]
    mean, lo, hi = crv.t_interval(values)
    iv = tbl.student_t_interval(values)
    assert mean == pytest.approx(iv.mean) and hi - mean == pytest.approx(iv.half_width, rel=1e-9)
    assert np.isnan(crv.t_interval([0.5])[1])
