"""Latency harness: warm up, time N single inferences, keep every sample, record the environment.

Protocol as commonly attributed to the MobileOne paper (Vasu et al., 2023, §4; its text gives no more
detail than this): fixed batch and input size, warm-up, then 1000 timed runs, the minimum reported.
Median, p90, mean and standard deviation are reported too, and the raw samples are kept. An optional
time cap (``max_seconds``) stops the timed phase early on slow models; the number of runs actually
done is recorded beside the number requested.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.runtimes import (
    available_runtimes,
    check_runtime,
    prepare,
    scratch_dir,
    torch_threads,
)
from mobilebone.timing import time_calls

__all__ = ["LatencyResult", "available_runtimes", "measure_latency", "time_calls"]


@dataclass
class LatencyResult:
    """Every timed sample (ms) of one model in one runtime, with its settings and environment."""

    runtime: str
    samples_ms: list[float]
    environment: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, int, int, int] = (1, 3, 224, 224)
    runs_requested: int = 0
    warmup: int = 0
    deploy: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        """How many timed runs were done (fewer than requested when the time cap stopped them)."""
        return len(self.samples_ms)

    @property
    def min_ms(self) -> float:
        """Fastest run: the least disturbed by other processes (the paper's statistic)."""
        return min(self.samples_ms)

    @property
    def median_ms(self) -> float:
        """Median run."""
        return statistics.median(self.samples_ms)

    @property
    def p90_ms(self) -> float:
        """90th percentile (``numpy.percentile``, linear interpolation)."""
        return float(np.percentile(self.samples_ms, 90.0))

    @property
    def mean_ms(self) -> float:
        """Mean run."""
        return statistics.fmean(self.samples_ms)

    @property
    def std_ms(self) -> float:
        """Sample standard deviation (0 for a single run)."""
        return statistics.stdev(self.samples_ms) if len(self.samples_ms) > 1 else 0.0

    def summary(self) -> dict[str, float | int]:
        """The statistics as a dict (what tables and CSV rows show)."""
        return {
            "runs": self.runs,
            "min_ms": self.min_ms,
            "median_ms": self.median_ms,
            "p90_ms": self.p90_ms,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-able: settings, statistics, raw samples, environment."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data.update(self.summary())
        return data


def measure_latency(
    model: nn.Module,
    *,
    runtime: str = "auto",
    input_shape: tuple[int, int, int, int] = (1, 3, 224, 224),
    runs: int = 1000,
    warmup: int = 50,
    threads: int | None = None,
    deploy: bool = True,
    max_seconds: float | None = None,
) -> LatencyResult:
    """Time ``model`` in ``runtime`` on a fixed random input; the model is reparameterized first unless ``deploy=False``.

    ``runtime`` is one of ``available_runtimes()`` or ``"auto"`` (the fastest CPU runtime, never a GPU one).
    ``threads`` sets PyTorch's and ONNX Runtime's intra-op threads (default: PyTorch's current setting).
    Exported and compiled runtimes are checked against PyTorch eager before timing (``RuntimeMismatch``).
    """
    from mobilebone.reparam import reparameterize_model

    name = check_runtime(runtime)
    if len(input_shape) != 4 or any(int(s) < 1 for s in input_shape):
        raise ValueError(f"input_shape must be (N, C, H, W) with positive sizes, got {input_shape!r}")
    threads = threads if threads is not None else torch.get_num_threads()
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    # deploy form = every branch and BatchNorm folded (MobileOne §3.1); train-time form = as built, eval.
    model = reparameterize_model(model) if deploy else _eval_copy(model)
    x = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    with torch_threads(threads), scratch_dir() as workdir:
        prepared = prepare(name, model, x, threads, workdir)
        samples = time_calls(prepared.run, runs=runs, warmup=warmup, max_seconds=max_seconds)
    environment = capture_environment(threads, runtime=name, precision=prepared.precision, deploy=deploy)
    return LatencyResult(
        runtime=name,
        samples_ms=samples,
        environment=environment,
        input_shape=(int(input_shape[0]), int(input_shape[1]), int(input_shape[2]), int(input_shape[3])),
        runs_requested=runs,
        warmup=warmup,
        deploy=deploy,
        info=prepared.info,
    )


def _eval_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).eval()
