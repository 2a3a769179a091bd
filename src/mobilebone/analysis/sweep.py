"""A latency sweep over zoo models × runtimes that saves every row as it completes and can resume.

After each measurement the whole result set is rewritten atomically (``results.json`` with raw samples,
``results.csv``), so an interrupted sweep keeps everything measured so far; with ``resume`` a rerun skips
the rows already measured with the same settings (failed rows are retried).

A resumed file can hold rows of several invocations with different runtimes, threads or forms, so each
row carries its own settings (and, when measured, its environment), and ``results.json`` lists every
invocation (its settings and environment) under ``invocations`` instead of one top-level settings block.
"""

from __future__ import annotations

import contextlib
import datetime
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from mobilebone.analysis.complexity import count_macs, count_params
from mobilebone.analysis.correlation import Correlation, latency_correlations
from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.latency import measure_latency
from mobilebone.analysis.report import (
    group_rows,
    invocations_of,
    markdown_report,
    read_json,
    write_atomic,
    write_csv,
    write_json,
)
from mobilebone.analysis.zoo import ZooEntry

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
REPORT_MD = "report.md"
PLOTS = {"macs": "latency_vs_macs.png", "params": "latency_vs_params.png"}


@dataclass(frozen=True)
class SweepSettings:
    """What every measurement of a sweep shares (a row is reused on resume only if all of it matches)."""

    runtimes: tuple[str, ...]
    threads: int
    runs: int = 1000
    warmup: int = 50
    input_size: int = 224
    batch_size: int = 1
    deploy: bool = True
    max_seconds: float | None = None

    @property
    def form(self) -> str:
        """``deploy`` (reparameterized) or ``train-time``."""
        return "deploy" if self.deploy else "train-time"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields plus ``form``."""
        data = asdict(self)
        data["runtimes"] = list(self.runtimes)
        data["form"] = self.form
        return data

    def key(self, model: str, runtime: str) -> tuple[Any, ...]:
        """Identity of one measurement: model, runtime and every setting that changes the number."""
        return (
            model,
            runtime,
            self.form,
            self.batch_size,
            self.input_size,
            self.threads,
            self.runs,
            self.warmup,
            self.max_seconds,
        )


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """The ``SweepSettings.key`` a stored row was measured under."""
    return (
        row["model"],
        row["runtime"],
        row["form"],
        row["batch_size"],
        row["input_size"],
        row["threads"],
        row["runs_requested"],
        row["warmup"],
        row["max_seconds"],
    )


RUNNING = "running"  # saved before a measurement starts, replaced by its outcome
CRASHED = "crashed"  # the process died during the measurement (found "running" on resume)
# A measurement the process died in is tried again on the next resume (the death may have been a kill or
# a full machine); after this many deaths it is left as crashed, so one broken runtime cannot stop a sweep.
MAX_CRASHES = 2


def _died(row: dict[str, Any]) -> dict[str, Any]:
    """A row left "running" by a process that died during its measurement, as a failure saying so."""
    crashes = int(row.get("crashes", 0)) + 1
    retry = "tried again on the next --resume" if crashes < MAX_CRASHES else "no longer retried on --resume"
    return row | {
        "status": CRASHED,
        "crashes": crashes,
        "error": (
            f"the process died while measuring this ({crashes}x: a crash inside the runtime, out of memory, "
            f"or killed); {retry}; run it alone (--models) to see the runtime's own message"
        ),
    }


def _gave_up(row: dict[str, Any]) -> bool:
    return row.get("status") == CRASHED and int(row.get("crashes", 0)) >= MAX_CRASHES


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


class Sweep:
    """Measure zoo entries in each runtime, persisting rows to ``out_dir`` as they complete."""

    def __init__(self, out_dir: str | Path, settings: SweepSettings, *, resume: bool = False) -> None:
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValueError(f"--out {str(self.out_dir)!r} is a file; give a folder")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.environment = capture_environment(settings.threads, deploy=settings.deploy)
        self.rows: list[dict[str, Any]] = []
        self.replaced = 0
        self.invocations: list[dict[str, Any]] = []
        results = self.out_dir / RESULTS_JSON
        if results.exists():
            previous = read_json(results)
            if resume:
                # Failed rows are measured again, but kept until then: a resume restricted to other
                # models (--models) must not drop them. A row still "running" is one the process died in.
                self.rows = [_died(r) if r.get("status") == RUNNING else r for r in previous["rows"]]
                self.invocations = invocations_of(previous)
            else:
                self.replaced = len(previous["rows"])
        self.invocation = len(self.invocations)  # this run's index, stored in each row it measures
        self.invocations.append(
            {"started_at": _now(), "settings": settings.to_dict(), "environment": self.environment}
        )

    def done(self, model: str, runtime: str) -> bool:
        """Whether this measurement is already stored, successfully, with the same settings."""
        key = self.settings.key(model, runtime)
        return any(row_key(r) == key and (r.get("status") == "ok" or _gave_up(r)) for r in self.rows)

    def pending(self, entries: Sequence[ZooEntry]) -> list[tuple[ZooEntry, str]]:
        """The (model, runtime) jobs still to measure, in order."""
        return [(e, rt) for e in entries for rt in self.settings.runtimes if not self.done(e.name, rt)]

    def run(
        self,
        entries: Sequence[ZooEntry],
        *,
        on_start: Callable[[ZooEntry, str], None] | None = None,
        on_row: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Measure every pending job; each row is saved before the next starts. Returns all rows."""
        jobs = self.pending(entries)
        by_model: dict[str, list[str]] = {}
        for entry, runtime in jobs:
            by_model.setdefault(entry.name, []).append(runtime)
        for entry in entries:
            runtimes = by_model.get(entry.name, [])
            if not runtimes:
                continue
            model, counts, error = self._build(entry)
            for runtime in runtimes:
                if on_start:
                    on_start(entry, runtime)
                with self._running(self._row(entry, runtime, counts)) as crashes:
                    row = self._measure(entry, runtime, model, counts, error)
                self.add(row | ({"crashes": crashes} if crashes else {}))
                if on_row:
                    on_row(row)
        return self.rows

    def _build(self, entry: ZooEntry) -> tuple[nn.Module | None, dict[str, Any], str | None]:
        """Build the model in the form to time and count *that* form's params and MACs (batch 1).

        Deploy form (default): reparameterized. ``--train-form``: as built (branches, BatchNorm), eval mode,
        so its train-time parameters and MACs are what the row reports beside its latency. Errors become
        the row's.
        """
        form = self.settings.form
        try:
            train = entry.build()
            model = entry.fuse(train) if self.settings.deploy else train.eval()
            counts: dict[str, Any] = {
                "params": count_params(model),
                "macs": count_macs(model, self.settings.input_size).total,
                "complexity_form": form,
            }
            return model, counts, None
        except Exception as err:
            return None, {"params": None, "macs": None, "complexity_form": form}, _one_line(err)

    @contextlib.contextmanager
    def _running(self, row: dict[str, Any]) -> Iterator[int]:
        """Save ``row`` as "running" for the measurement inside: if a runtime kills the process (a native
        crash, out of memory), the next ``resume`` finds it and records the death. Yields how many deaths
        this measurement already had; Ctrl-C puts the previous row back."""
        key = row_key(row)
        previous = next((r for r in self.rows if row_key(r) == key), None)
        crashes = int(previous.get("crashes", 0)) if previous else 0
        self.add(row | {"status": RUNNING, "crashes": crashes, "measured_at": _now()})
        try:
            yield crashes
        except KeyboardInterrupt:
            self.rows = [r for r in self.rows if row_key(r) != key] + ([previous] if previous else [])
            self.save()
            raise

    def _row(self, entry: ZooEntry, runtime: str, counts: dict[str, Any]) -> dict[str, Any]:
        """The fields every row of this measurement has, whatever its outcome."""
        s = self.settings
        return {
            "model": entry.name,
            "source": entry.source,
            "kind": entry.kind,
            "runtime": runtime,
            "form": s.form,
            "batch_size": s.batch_size,
            "input_size": s.input_size,
            "threads": s.threads,
            "runs_requested": s.runs,
            "warmup": s.warmup,
            "max_seconds": s.max_seconds,
            "invocation": self.invocation,
            **counts,
        }

    def _measure(
        self,
        entry: ZooEntry,
        runtime: str,
        model: nn.Module | None,
        counts: dict[str, Any],
        error: str | None,
    ) -> dict[str, Any]:
        s = self.settings
        row = self._row(entry, runtime, counts)
        if model is not None and error is None:
            try:
                result = measure_latency(
                    model,
                    runtime=runtime,
                    input_shape=(
                        s.batch_size,
                        int(getattr(model, "in_chans", 3)),
                        s.input_size,
                        s.input_size,
                    ),
                    runs=s.runs,
                    warmup=s.warmup,
                    threads=s.threads,
                    deploy=s.deploy,
                    max_seconds=s.max_seconds,
                )
                row.update(result.summary())
                row.update(status="ok", error=None, measured_at=_now())
                row.update(samples_ms=result.samples_ms, info=result.info, environment=result.environment)
                return row
            except Exception as err:
                error = _one_line(err)
                row["traceback"] = traceback.format_exc(limit=8)
        row.update(status="error", error=error, measured_at=_now())
        return row

    def add(self, row: dict[str, Any]) -> None:
        """Store a row (replacing one with the same key) and rewrite the result files atomically."""
        key = row_key(row)
        self.rows = [r for r in self.rows if row_key(r) != key] + [row]
        self.save()

    def document(self) -> dict[str, Any]:
        """The JSON document: tool, every invocation (settings, environment) and every row with its samples."""
        return {"tool": "mobilebone bench", "invocations": self.invocations, "rows": self.rows}

    def save(self) -> None:
        """Rewrite ``results.json`` and ``results.csv`` (each atomically)."""
        write_json(self.document(), self.out_dir / RESULTS_JSON)
        write_csv(self.rows, self.out_dir / RESULTS_CSV)

    def correlations(self, n_resamples: int = 2000) -> dict[str, list[Correlation]]:
        """Rank correlations of latency with MACs and params, per group of identical settings."""
        return {
            label: latency_correlations(rows, n_resamples=n_resamples)
            for label, rows in group_rows(self.rows).items()
        }

    def finish(self) -> dict[str, list[Correlation]]:
        """Write the study: ``report.md`` and the two scatter plots (PNG). Returns the correlations."""
        from mobilebone.analysis.plots import scatter_latency

        self.save()  # also records this invocation when --resume found nothing left to measure
        correlations = self.correlations()
        groups = group_rows(self.rows)
        for predictor, filename in PLOTS.items():
            scatter_latency(groups, predictor, self.out_dir / filename)
        text = markdown_report(
            self.rows, correlations, invocations=self.invocations, figures=list(PLOTS.values())
        )
        write_atomic(self.out_dir / REPORT_MD, text)
        return correlations
