"""What the train loop reports about its progress, and the time it measures.

`progress_display` shows training progress (``train.progress``): a ``tqdm`` bar on a
terminal, else `ProgressLines`, plain lines for logs, CI and notebooks. `StepClock`
accounts the loop's wall time per step: ``inside`` is dispatch to ``block_until_ready`` of
the jitted step, everything else in the loop body is ``outside``, evaluations and checkpoint
saves excluded; the loop's ``host_fraction`` and throughput come from it.
"""

from __future__ import annotations

import math
import sys
import time

from tnd.training.config import TrainSpec


class ProgressLines:
    """Training progress as plain lines on stderr, for output that is not a terminal (a log
    file, CI, a notebook), where a progress bar's carriage returns show nothing until the
    end: one line per logged row (every ``train.log_every`` steps, and the last step) with
    the step, loss, accuracy, steps per second and the time left. Has the methods of a
    ``tqdm`` bar that the loop uses."""

    def __init__(self, total: int, initial: int, desc: str, stream=None):
        self.total, self.n, self.desc = int(total), int(initial), desc
        self.stream = stream if stream is not None else sys.stderr
        self.fields: dict[str, str] = {}
        self.due = False
        self.t_last, self.n_last = time.perf_counter(), self.n

    def set_postfix(self, refresh: bool = False, **fields: str) -> None:
        """The latest metrics; the line that shows them is printed at the next `update`."""
        self.fields, self.due = {k: str(v) for k, v in fields.items()}, True

    def update(self, steps: int = 1) -> None:
        """``steps`` more steps done; prints the line of the metrics set since the last one."""
        first = self.n == self.n_last  # the step that compiled: the rate is measured from its end
        self.n += int(steps)
        if first and not self.due:
            self.t_last, self.n_last = time.perf_counter(), self.n
        if self.due:
            self.due = False
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        """The progress line: step, metrics, the rate since the last line and the time left."""
        now = time.perf_counter()
        rate = (self.n - self.n_last) / max(now - self.t_last, 1e-9)
        self.t_last, self.n_last = now, self.n
        left = (self.total - self.n) / rate if rate > 0 else float("nan")
        metrics = "".join(f", {key} {value}" for key, value in self.fields.items() if key != "tps")
        return (f"{self.desc}: step {self.n}/{self.total} ({100 * self.n / max(self.total, 1):.0f}%){metrics}, "
                f"{rate:.3g} steps/s, ETA {_duration(left)}")

    def close(self) -> None:
        """Flushes the stream (nothing else to close)."""
        self.stream.flush()


def _duration(seconds: float) -> str:
    """``95`` -> ``1 min 35 s``; ``nan`` -> ``?``."""
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def progress_display(spec: TrainSpec, start: int, desc: str):
    """What shows training progress (``train.progress``): a ``tqdm`` bar on a terminal,
    `ProgressLines` elsewhere; None with ``train.progress=false``."""
    if not spec.progress:
        return None
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=spec.steps, initial=start, desc=desc, dynamic_ncols=True)
    return ProgressLines(spec.steps, start, desc)


class StepClock:
    """The loop's wall time. ``inside``: dispatch to ``block_until_ready`` of the jitted step;
    ``outside``: the rest of the loop body; both over the steps after the first (which
    compiles) and without the ``excluded`` seconds (evaluations, checkpoint saves). A window
    of steps since the last logged row gives the logged throughput; ``eval_seconds`` is not
    training time."""

    def __init__(self):
        self.inside = self.outside = 0.0
        self.timed_steps = 0
        self.window_time, self.window_steps = 0.0, 0
        self.eval_seconds = 0.0
        self.begin = self.previous = time.perf_counter()
        self.excluded = 0.0  # eval + checkpoint time since ``previous``, not counted as loop overhead

    def stepped(self, t0: float, t1: float, *, timed: bool) -> None:
        """Accounts one step dispatched at ``t0`` and ready at ``t1`` (``timed``: not the first)."""
        if timed:
            self.inside += t1 - t0
            self.outside += max(0.0, t0 - self.previous - self.excluded)
            self.timed_steps += 1
        self.window_time += t1 - self.previous - self.excluded
        self.window_steps += 1
        self.previous, self.excluded = t1, 0.0

    def window_rate(self, timesteps_per_step: int) -> float:
        """Timesteps per second over the window of steps since the last call, which starts a new one."""
        rate = timesteps_per_step * self.window_steps / max(self.window_time, 1e-9)
        self.window_time, self.window_steps = 0.0, 0
        return rate

    def host_fraction_so_far(self) -> float:
        """``outside / (inside + outside)`` of the timed steps so far (NaN: none yet)."""
        return self.outside / max(self.inside + self.outside, 1e-12) if self.timed_steps else float("nan")

    def exclude(self, seconds: float, *, evaluation: bool = False) -> None:
        """Leaves ``seconds`` (an evaluation's or a save's) out of the step times."""
        self.excluded += seconds
        if evaluation:
            self.eval_seconds += seconds

    def training_seconds(self) -> float:
        """Wall seconds since the loop began, evaluations left out."""
        return time.perf_counter() - self.begin - self.eval_seconds
