"""Shared helpers for the entry-point tests: compose configs, call the Hydra mains in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import experiments.schema  # noqa: F401  (registers the structured configs)

CONF = str(Path(__file__).resolve().parents[1] / "conf")

# Smaller still than experiment=smoke, for tests.
TINY = [
    "experiment=smoke", "train.steps=4", "train.log_every=2", "train.eval_every=2", "train.checkpoint_every=2",
    "train.batch_size=2", "train.window=8", "env.options.max_steps=100", "eval.num_games=1",
]


def compose_cfg(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def call_main(main, argv: list[str], monkeypatch) -> int:
    """Runs a Hydra main in-process with ``argv``; returns its exit status."""
    # Hydra's log handlers would keep pytest's per-test stderr capture open: disable them.
    argv = ["hydra/job_logging=disabled", "hydra/hydra_logging=disabled", *argv]
    monkeypatch.setattr(sys, "argv", ["prog", *argv])
    # absl's log handler keeps the sys.stderr of its import time (a pytest capture stream)
    # and closes it when Hydra reconfigures logging; point it at the real stderr instead.
    import absl.logging

    absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__
    out, err = sys.stdout, sys.stderr
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.stdout, sys.stderr = out, err
    return 0


def train_tiny(run: Path, data_root: Path, *overrides: str) -> Path:
    """One tnd-train run at the TINY size into ``run`` (with its own monkeypatch: for module fixtures)."""
    from experiments import train as train_entry

    mp = pytest.MonkeyPatch()
    try:
        status = call_main(train_entry.main, [*TINY, f"data.root={data_root}", *overrides, f"hydra.run.dir={run}"], mp)
    finally:
        mp.undo()
    assert status == 0, f"the tiny run in {run} failed"
    return run


def assert_one_readable_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    return err


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """One dataset cache shared by every entry-point test (collected once)."""
    return tmp_path_factory.mktemp("data_cache")
