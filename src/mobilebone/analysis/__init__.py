"""Measurement and analysis: complexity counting, latency, correlation studies."""

from mobilebone.analysis.complexity import MacsReport, count_macs, count_params
from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.latency import LatencyResult, available_runtimes, measure_latency

__all__ = [
    "LatencyResult",
    "MacsReport",
    "available_runtimes",
    "capture_environment",
    "count_macs",
    "count_params",
    "measure_latency",
]
