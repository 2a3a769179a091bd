"""Interleaved timing of several inference calls in one process: shuffled rounds, median of per-round minima.

Shared machines drift by tens of percent within a minute, so candidates are never timed one after another:
every round runs each candidate a few times in a freshly shuffled order and keeps its fastest run (the one
least disturbed, and past the switch from the previous candidate); the reported time is the median of those
per-round minima.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable


def interleaved_minima(
    calls: dict[str, Callable[[], object]],
    *,
    rounds: int = 20,
    runs_per_round: int = 5,
    warmup: int = 5,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Per-round minimum latency (ms) of every call, rounds interleaved in shuffled order."""
    if rounds < 1 or runs_per_round < 1:
        raise ValueError(f"rounds and runs_per_round must be >= 1, got {rounds} and {runs_per_round}")
    for call in calls.values():
        for _ in range(warmup):
            call()
    order = list(calls)
    rng = random.Random(seed)
    minima: dict[str, list[float]] = {name: [] for name in calls}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            rng.shuffle(order)
            for name in order:
                call = calls[name]
                best = float("inf")
                for _ in range(runs_per_round):
                    start = time.perf_counter_ns()
                    call()
                    best = min(best, (time.perf_counter_ns() - start) / 1e6)
                minima[name].append(best)
    finally:
        if gc_was_enabled:
            gc.enable()
    return minima


def median_of(minima: list[float]) -> float:
    """The reported latency: the median of per-round minima."""
    return statistics.median(minima)
