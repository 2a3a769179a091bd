"""Measurement and analysis: complexity counting, latency, correlation studies."""

from mobilebone.analysis.complexity import MacsReport, count_macs, count_params

__all__ = ["MacsReport", "count_macs", "count_params"]
