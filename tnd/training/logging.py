"""Run logs: ``metrics.jsonl`` (one JSON object per line) and TensorBoard event files.

On resume from step ``k`` the lines for steps after ``k`` (written by the interrupted run
after its last checkpoint) are dropped, and TensorBoard purges the same steps, so the logs
of a resumed run read like those of an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from tnd.run_folder import METRICS_FILE


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


log = logging.getLogger(__name__)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def tensorboard_writer() -> type:
    """tensorboardX's ``SummaryWriter``, imported without PyTorch.

    tensorboardX imports ``torch`` whenever it is installed (the ``parity`` extra) only to
    accept torch tensors; the runs log plain floats. That import costs seconds, and torch's
    exit hook logs three stray ``fake_tensor`` INFO lines after a run's last line (Hydra
    sets the root logger to INFO). A torch imported earlier by the caller is left alone.
    """
    if "torch" in sys.modules or "tensorboardX.writer" in sys.modules:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    sys.modules["torch"] = None  # `import torch` raises ImportError: tensorboardX's own fallback
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


class MetricsLogger:
    """Appends metric rows to ``<run_dir>/metrics.jsonl``, TensorBoard scalars and, as one
    readable line per row, the ``tnd`` logger (the run folder's ``train.log`` under tnd-train)."""

    def __init__(self, run_dir: str | Path, *, resume_step: int = 0, tensorboard: bool = True):
        self.path = Path(run_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
                if int(row.get("step", 0)) <= resume_step:
                    kept.append(line)
            self.path.write_text("".join(k + "\n" for k in kept))
        self.writer = None
        if tensorboard:
            SummaryWriter = tensorboard_writer()
            self.writer = SummaryWriter(
                str(Path(run_dir) / "tensorboard"), purge_step=resume_step + 1 if resume_step else None
            )

    def log(self, row: dict[str, Any]) -> None:
        row = {k: _jsonable(v) for k, v in row.items()}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        log.info("step %s: %s", row.get("step"), ", ".join(f"{k}={_short(v)}" for k, v in row.items() if k != "step"))
        if self.writer is not None:
            step = int(row["step"])
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All rows of ``<run_dir>/metrics.jsonl``."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
