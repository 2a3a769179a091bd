"""The one timing loop: warm up, then time single calls (several callables interleaved run by run).

Every latency number of the project (``bench``, ``study``, ``export --int8``, the benchmark scripts) comes
from here. The garbage collector is paused while timing, as ``timeit`` does.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping

# With a time cap, at least this many timed runs are still done (a minimum of 1 sample is no statistic).
MIN_TIMED_RUNS = 10


def time_interleaved(
    calls: Mapping[str, Callable[[], object]],
    *,
    runs: int,
    warmup: int,
    max_seconds: float | None = None,
) -> dict[str, list[float]]:
    """Milliseconds per call of each callable, alternating between them every run (forward, then reversed).

    Interleaving puts all callables under the same machine conditions (a shared host drifts by ±50 %).
    Each is called ``warmup`` times untimed, then up to ``runs`` times timed. With ``max_seconds``, warm-up
    stops after half that time and the timed phase after that time, but not before ``MIN_TIMED_RUNS`` runs.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if not calls:
        raise ValueError("nothing to time")
    cap = max_seconds if max_seconds is not None and max_seconds > 0 else None
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(warmup):
            for name in names:
                calls[name]()
            if cap is not None and time.perf_counter() - start > cap / 2:
                break
        start = time.perf_counter()
        for i in range(runs):
            for name in names if i % 2 == 0 else reversed(names):
                t0 = time.perf_counter_ns()
                calls[name]()
                samples[name].append((time.perf_counter_ns() - t0) / 1e6)
            if cap is not None and i + 1 >= MIN_TIMED_RUNS and time.perf_counter() - start > cap:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def time_calls(
    fn: Callable[[], object], *, runs: int, warmup: int, max_seconds: float | None = None
) -> list[float]:
    """Milliseconds per call of ``fn``: ``time_interleaved`` with one callable."""
    return time_interleaved({"fn": fn}, runs=runs, warmup=warmup, max_seconds=max_seconds)["fn"]


def round_minima(
    calls: Mapping[str, Callable[[], object]],
    *,
    rounds: int = 20,
    runs_per_round: int = 5,
    warmup: int = 5,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Per-round minimum latency (ms) of every call, the calls taken in a freshly shuffled order each round.

    Each round runs every call ``runs_per_round`` times (``time_calls``) and keeps its fastest run, the one
    least disturbed by the shared machine and past the switch from the previous call; report the median of
    the minima (``statistics.median``). Used where many candidates are compared (``mobilebone deploy``).
    """
    import random

    if rounds < 1 or runs_per_round < 1:
        raise ValueError(f"rounds and runs_per_round must be >= 1, got {rounds} and {runs_per_round}")
    if warmup:
        time_interleaved(calls, runs=1, warmup=warmup)
    order = list(calls)
    rng = random.Random(seed)
    minima: dict[str, list[float]] = {name: [] for name in order}
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            minima[name].append(min(time_calls(calls[name], runs=runs_per_round, warmup=0)))
    return minima
