"""Run a study: every case × runtime through ``measure_latency`` (the ``mobilebone bench`` harness).

A case is one network of a study (e.g. the 30-layer net with DY-ReLU-B). Each gets its parameters and
MACs counted (deploy form) beside its latency, and its latency is also given as a ratio to the first
case of its group in the same runtime — same-run ratios are far steadier on a shared machine than
milliseconds on a shared machine. With ``rounds > 1`` the whole sweep is repeated and each case's samples are
pooled, so slow drifts of the machine spread over every case instead of favouring the first ones.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from mobilebone.analysis import count_macs, count_params
from mobilebone.analysis.latency import LatencyResult, measure_latency

DEFAULT_RUNTIMES = ("eager", "onnxruntime")


@dataclass(frozen=True)
class StudyCase:
    """One network of a study: how to build it, its input, and what the paper reports for it."""

    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, int, int, int]
    group: str = ""
    description: str = ""
    deploy: bool = True  # time the reparameterized form (False: keep train-time branches and BN)
    paper: str = ""  # the paper's number for this case, as text with its provenance


@dataclass(frozen=True)
class StudySettings:
    """How every case is timed (``measure_latency`` arguments) and how often the sweep is repeated."""

    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES
    runs: int = 1000
    warmup: int = 50
    threads: int | None = None
    max_seconds: float | None = 2.0
    rounds: int = 1


@dataclass
class StudyResult:
    """Rows (one per case × runtime) with raw samples, plus the settings and the environment."""

    study: str
    title: str
    settings: StudySettings
    rows: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> StudyResult:
        """Rebuild a result from ``to_document``'s dict (e.g. to redraw a chart from ``results.json``)."""
        settings = dict(document["settings"])
        settings["runtimes"] = tuple(settings["runtimes"])
        return cls(
            study=document["study"],
            title=document["title"],
            settings=StudySettings(**settings),
            rows=list(document["rows"]),
            environment=dict(document["environment"]),
            notes=list(document.get("notes", [])),
        )

    def to_document(self) -> dict[str, Any]:
        """Everything as one JSON-able dict (what ``results.json`` holds)."""
        return {
            "study": self.study,
            "title": self.title,
            "settings": asdict(self.settings),
            "environment": self.environment,
            "notes": self.notes,
            "rows": self.rows,
        }


def _complexity(case: StudyCase, model: nn.Module) -> tuple[int, int]:
    """Params and MACs of the form that is timed (deploy = reparameterized)."""
    from mobilebone.reparam import reparameterize_model

    counted = reparameterize_model(model) if case.deploy else copy.deepcopy(model).eval()
    return count_params(counted), count_macs(counted, case.input_shape).total


def _pool(results: Sequence[LatencyResult]) -> LatencyResult:
    """One result holding the samples of every round (settings and environment of the first)."""
    first = results[0]
    pooled = copy.copy(first)
    pooled.samples_ms = [s for r in results for s in r.samples_ms]
    pooled.runs_requested = sum(r.runs_requested for r in results)
    return pooled


def _row(case: StudyCase, runtime: str, params: int, macs: int) -> dict[str, Any]:
    return {
        "group": case.group,
        "case": case.name,
        "description": case.description,
        "runtime": runtime,
        "form": "deploy" if case.deploy else "train-time",
        "input_shape": "x".join(str(s) for s in case.input_shape),
        "params": params,
        "macs": macs,
        "paper": case.paper,
    }


def run_study(
    study: str,
    title: str,
    cases: Sequence[StudyCase],
    settings: StudySettings,
    *,
    on_start: Callable[[StudyCase, str], None] | None = None,
    on_done: Callable[[StudyCase, str], None] | None = None,
    notes: Sequence[str] = (),
) -> StudyResult:
    """Time every case in every runtime; a case that fails in a runtime becomes a row with its error.

    ``on_start`` is called before and ``on_done`` after each (case, runtime) measurement of each round,
    whether it succeeded or failed (a progress bar advances in ``on_done``).
    """
    if settings.rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {settings.rounds}")
    models: dict[str, nn.Module] = {}
    complexity: dict[str, tuple[int, int]] = {}
    for case in cases:
        torch.manual_seed(0)  # the same weights every run (latency does not depend on them)
        models[case.name] = case.build().eval()
        complexity[case.name] = _complexity(case, models[case.name])
    samples: dict[tuple[str, str], list[LatencyResult]] = {}
    errors: dict[tuple[str, str], str] = {}
    for _ in range(settings.rounds):
        for case in cases:
            for runtime in settings.runtimes:
                key = (case.name, runtime)
                if key in errors:  # failed in an earlier round: not retried, but counted as done
                    if on_done is not None:
                        on_done(case, runtime)
                    continue
                if on_start is not None:
                    on_start(case, runtime)
                try:
                    result = measure_latency(
                        models[case.name],
                        runtime=runtime,
                        input_shape=case.input_shape,
                        runs=settings.runs,
                        warmup=settings.warmup,
                        threads=settings.threads,
                        deploy=case.deploy,
                        max_seconds=settings.max_seconds,
                    )
                except (ValueError, RuntimeError) as err:  # export/parity failures are ValueErrors
                    errors[key] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                else:
                    samples.setdefault(key, []).append(result)
                if on_done is not None:
                    on_done(case, runtime)
    out = StudyResult(study, title, settings, notes=list(notes))
    for case in cases:
        for runtime in settings.runtimes:
            key = (case.name, runtime)
            row = _row(case, runtime, *complexity[case.name])
            if key in samples:
                result = _pool(samples[key])
                out.environment = out.environment or dict(result.environment)
                row.update(result.summary())
                row.update(
                    runs_requested=result.runs_requested,
                    status="ok",
                    error="",
                    samples_ms=result.samples_ms,
                    info=result.info,
                    form_measured=result.environment.get("form"),
                )
            else:
                row.update(status="failed", error=errors.get(key, "not measured"))
            out.rows.append(row)
    _add_ratios(out.rows)
    out.environment.pop("form", None)  # per row: studies mix deploy and train-time forms
    out.environment.pop("runtime", None)
    out.environment["measured_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"
    )
    return out


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """``vs_baseline`` = min latency / min latency of the group's first case in the same runtime."""
    baselines: dict[tuple[str, str], float] = {}
    for row in rows:
        key = (row["group"], row["runtime"])
        if row["status"] == "ok" and key not in baselines:
            baselines[key] = row["min_ms"]
        base = baselines.get(key)
        row["vs_baseline"] = row["min_ms"] / base if row["status"] == "ok" and base else None
