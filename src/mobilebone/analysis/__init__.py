"""Measurement and analysis: complexity counting, latency, correlation studies.

Names are imported on first use, so that the torch-free parts (the runtime table, the timing loop) can be
imported by the command line without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mobilebone.analysis.complexity import MacsReport, count_macs, count_params
    from mobilebone.analysis.environment import capture_environment, cpu_features
    from mobilebone.analysis.latency import LatencyResult, measure_latency
    from mobilebone.analysis.runtimes import available_runtimes

_WHERE = {
    "LatencyResult": "latency",
    "MacsReport": "complexity",
    "available_runtimes": "runtimes",
    "capture_environment": "environment",
    "cpu_features": "environment",
    "count_macs": "complexity",
    "count_params": "complexity",
    "measure_latency": "latency",
}

__all__ = [
    "LatencyResult",
    "MacsReport",
    "available_runtimes",
    "capture_environment",
    "count_macs",
    "count_params",
    "cpu_features",
    "measure_latency",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'mobilebone.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mobilebone.analysis.{_WHERE[name]}"), name)
