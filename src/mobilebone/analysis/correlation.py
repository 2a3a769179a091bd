"""Rank correlation of latency with MACs and with parameters, with bootstrap confidence intervals.

The MobileOne paper (§3, Fig. 2 / Table 1 as commonly cited) reports Spearman's ρ between latency and
FLOPs and between latency and parameter count over a set of mobile networks. Rank correlations are
used because only the ordering matters and they are insensitive to a uniform slowdown of the machine.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METHODS = ("spearman", "kendall")
# Fewer pairs than this have no meaningful rank correlation (two points are always perfectly ordered).
MIN_PAIRS = 3


@dataclass(frozen=True)
class Correlation:
    """One rank correlation: estimate, two-sided p-value and a bootstrap confidence interval."""

    method: str
    x: str
    y: str
    n: int
    estimate: float
    pvalue: float
    ci_low: float
    ci_high: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)

    @property
    def defined(self) -> bool:
        """Whether there is an estimate (at least ``MIN_PAIRS`` models whose ranks are not all tied)."""
        return self.n >= MIN_PAIRS and math.isfinite(self.estimate)

    @property
    def undefined_reason(self) -> str:
        """What to print instead of a NaN estimate."""
        if self.n < MIN_PAIRS:
            return f"n/a (needs ≥ {MIN_PAIRS} models, have {self.n})"
        return "n/a (all ranks tied)"

    def __str__(self) -> str:
        if not self.defined:
            return self.undefined_reason
        pct = round(100 * self.confidence)
        return f"{self.estimate:+.2f} [{self.ci_low:+.2f}, {self.ci_high:+.2f}] ({pct} % CI, n={self.n})"


def _statistic(method: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if method == "spearman":
        result = stats.spearmanr(x, y)
    elif method == "kendall":
        result = stats.kendalltau(x, y)
    else:
        raise ValueError(f"unknown correlation method {method!r}; choose from {', '.join(METHODS)}")
    return float(result.statistic), float(result.pvalue)


def _spearman_vectorized(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's ρ along ``axis`` for a batch of resamples: Pearson's r of average ranks (scipy's definition)."""
    from scipy import stats

    rx = stats.rankdata(x, axis=axis)
    ry = stats.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    denominator = np.sqrt((rx * rx).sum(axis=axis) * (ry * ry).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((rx * ry).sum(axis=axis) / denominator)


def rank_correlation(
    x: Sequence[float],
    y: Sequence[float],
    *,
    method: str = "spearman",
    x_name: str = "x",
    y_name: str = "y",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Correlation:
    """Spearman or Kendall correlation of paired samples with a seeded paired-bootstrap percentile CI.

    The models are resampled with replacement (pairs kept together); resamples whose ranks are all tied
    give no statistic and are dropped. Fewer than 3 pairs give NaN throughout.
    """
    from scipy import stats

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be 1-D and of equal length, got {xs.shape} and {ys.shape}")
    n = len(xs)
    if n < MIN_PAIRS:
        nan = math.nan
        return Correlation(method, x_name, y_name, n, nan, nan, nan, nan, confidence)
    with warnings.catch_warnings():
        # Constant inputs (all latencies equal, or a resample of one model) have no rank correlation:
        # scipy warns and returns NaN, which is what we report / drop.
        warnings.simplefilter("ignore")
        estimate, pvalue = _statistic(method, xs, ys)
        spearman = method == "spearman"
        boot = stats.bootstrap(
            (xs, ys),
            _spearman_vectorized if spearman else lambda a, b: _statistic(method, a, b)[0],
            paired=True,
            vectorized=spearman,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    distribution = boot.bootstrap_distribution[np.isfinite(boot.bootstrap_distribution)]
    alpha = (1 - confidence) / 2
    if distribution.size:
        low, high = np.quantile(distribution, [alpha, 1 - alpha])
    else:
        low = high = math.nan
    return Correlation(method, x_name, y_name, n, estimate, pvalue, float(low), float(high), confidence)


def latency_correlations(
    rows: Sequence[dict[str, Any]],
    *,
    latency_key: str = "min_ms",
    predictors: Sequence[str] = ("macs", "params"),
    methods: Sequence[str] = METHODS,
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[Correlation]:
    """Correlate ``latency_key`` with each predictor over ``rows`` (one group: a runtime and its settings)."""
    ok = [r for r in rows if r.get("status", "ok") == "ok" and r.get(latency_key) is not None]
    latency = [float(r[latency_key]) for r in ok]
    results = []
    for predictor in predictors:
        values = [float(r[predictor]) for r in ok]
        for method in methods:
            results.append(
                rank_correlation(
                    values,
                    latency,
                    method=method,
                    x_name=predictor,
                    y_name=latency_key,
                    n_resamples=n_resamples,
                    seed=seed,
                )
            )
    return results
