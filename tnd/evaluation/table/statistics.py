"""Intervals over seeds: mean and 95% Student-t half-width (the quantile from ``scipy.stats``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import numpy as np


class TableError(ValueError):
    """Unreadable run folders or bad arguments to the table functions."""



# --------------------------------------------------------------------------- statistics


def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (e.g. p = 0.975, df = 2 -> 4.303), ``scipy.stats.t.ppf``."""
    if not 0.0 < p < 1.0:
        raise TableError(f"Quantile probability must lie strictly between 0 and 1, got {p}.")
    if df <= 0:
        raise TableError(f"Student-t degrees of freedom must be > 0, got {df}.")
    from scipy import stats  # on first use: reading run folders (tnd-eval) does not pay for scipy

    return float(stats.t.ppf(p, df))


@dataclasses.dataclass(frozen=True)
class Interval:
    """Mean and 95% CI half-width over ``n`` values; ``half_width`` is NaN when n < 2."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def clipped(self, lower: float | None = None, upper: float | None = None) -> tuple[float, float]:
        """(low, high) limited to a metric's physical range [lower, upper] (None: unbounded)."""
        low, high = self.low, self.high
        return (low if lower is None else max(low, lower), high if upper is None else min(high, upper))


def student_t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """mean ± t_{(1+c)/2, n-1} · s/√n over the finite ``values`` (NaNs are not counted).

    n = 0 -> mean and half-width NaN; n = 1 -> half-width NaN (undefined, shown "n/a").
    """
    x = np.asarray([float(v) for v in values], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, 1)
    sem = float(x.std(ddof=1)) / math.sqrt(n)  # the standard error of the mean (scipy.stats.sem)
    return Interval(mean, student_t_quantile(0.5 + confidence / 2.0, n - 1) * sem, n)
