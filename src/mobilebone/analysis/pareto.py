"""Accuracy vs measured latency: Pareto fronts per runtime and machine, from ``mobilebone bench`` rows.

A point is one set of weights (zoo model + tag, at the tag's eval resolution) timed in one runtime on one
machine. It is on the front when no other point is at least as fast and at least as accurate, and
strictly better in one of the two (MobileNetV4, arXiv 2404.10518, §3 and Fig. 1 compare models this way).
Bench rows are read through their own files (``results.json`` or ``results.csv``), so results recorded
on other machines can be merged; each keeps its environment.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobilebone.analysis.accuracy import AccuracyEntry

RESULTS_JSON = "results.json"  # the files `mobilebone bench` writes (analysis/sweep.py)
RESULTS_CSV = "results.csv"
STATS = ("min_ms", "median_ms", "p90_ms", "mean_ms")
# Axes a front can be drawn against: latency is measured; MACs and params are counts of the timed form.
AXES = ("latency", "macs", "params")
# Cross-machine verdicts: on the front of every machine that measured it, of more than half, of some, of none.
CONSENSUS = ("every", "most", "some", "none")


@dataclass(frozen=True)
class Point:
    """One set of weights timed in one runtime on one machine, with its published accuracy."""

    model: str
    tag: str
    input_size: int
    runtime: str
    machine: str
    top1: float
    latency_ms: float
    macs: float | None
    params: float | None
    source: str
    kind: str
    accuracy_source: str
    precision: str = "fp32"

    @property
    def weights(self) -> str:
        """``arch.tag`` without the zoo prefix."""
        return f"{self.model.rsplit('/', 1)[-1]}.{self.tag}"

    @property
    def label(self) -> str:
        """Short label for tables and plots: ``arch.tag@size``."""
        return f"{self.weights}@{self.input_size}"

    @property
    def ours(self) -> bool:
        """Whether this is a mobilebone model (highlighted in plots)."""
        return self.source == "mobilebone"

    def value(self, axis: str) -> float | None:
        """The cost on ``axis``: latency (ms), MACs or params."""
        return {"latency": self.latency_ms, "macs": self.macs, "params": self.params}[axis]


def pareto_front(costs: Sequence[float], accuracies: Sequence[float]) -> list[bool]:
    """Which points no other point dominates (lower-or-equal cost and higher-or-equal accuracy, one strictly)."""
    if len(costs) != len(accuracies):
        raise ValueError(f"costs and accuracies differ in length ({len(costs)} vs {len(accuracies)})")
    on_front = []
    for c, a in zip(costs, accuracies, strict=True):
        dominated = any(
            c2 <= c and a2 >= a and (c2 < c or a2 > a) for c2, a2 in zip(costs, accuracies, strict=True)
        )
        on_front.append(not dominated)
    return on_front


def front_of(points: Sequence[Point], axis: str = "latency") -> list[Point]:
    """The points of ``points`` on the accuracy-vs-``axis`` front (points without that cost are left out)."""
    usable = [p for p in points if p.value(axis) is not None]
    flags = pareto_front([float(p.value(axis)) for p in usable], [p.top1 for p in usable])  # type: ignore[arg-type]
    return [p for p, on in zip(usable, flags, strict=True) if on]


@dataclass
class BenchResults:
    """The rows of one ``mobilebone bench`` output (one machine) and the environment they were measured in."""

    label: str
    path: Path
    rows: list[dict[str, Any]]
    environment: dict[str, Any] = field(default_factory=dict)


_NUMERIC = ("batch_size", "input_size", "threads", "runs", "params", "macs", *STATS)


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row with its numbers parsed (empty cells → None)."""
    out = dict(row)
    for key in _NUMERIC:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = float(value) if value.strip() else None
    for key in ("batch_size", "input_size", "threads"):
        if out.get(key) is not None:
            out[key] = int(out[key])
    return out


def read_bench_results(path: str | Path, label: str | None = None) -> BenchResults:
    """Adapter over bench's output folder (or one of its files): ``results.json`` if present, else ``results.csv``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    json_file = path if path.suffix == ".json" else folder / RESULTS_JSON
    csv_file = path if path.suffix == ".csv" else folder / RESULTS_CSV
    environment: dict[str, Any] = {}
    if json_file.is_file():
        try:
            document = json.loads(json_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{json_file} is not valid JSON ({err})") from None
        if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
            raise ValueError(f"{json_file} is not a mobilebone bench results file")
        rows = [_typed(r) for r in document["rows"]]
        invocations = document.get("invocations") or []
        if invocations:
            environment = dict(invocations[-1].get("environment") or {})
        else:
            environment = dict(document.get("environment") or {})
    elif csv_file.is_file():
        with csv_file.open(encoding="utf-8", newline="") as handle:
            rows = [_typed(r) for r in csv.DictReader(handle)]
        if rows and not {"model", "runtime", "min_ms"} <= set(rows[0]):
            raise ValueError(f"{csv_file} is not a mobilebone bench results file")
    else:
        raise FileNotFoundError(
            f"{path}: no {RESULTS_JSON} or {RESULTS_CSV} (run `mobilebone bench --out DIR`)"
        )
    return BenchResults(label or folder.resolve().name, folder, rows, environment)


def _latest(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Usable rows (ok, deploy form, batch 1), the latest per model × runtime × resolution."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        if row.get("status", "ok") != "ok" or row.get("min_ms") is None:
            continue
        if row.get("form", "deploy") != "deploy" or int(row.get("batch_size") or 1) != 1:
            continue
        key = (row["model"], row["runtime"], int(row["input_size"]))
        if key not in latest or str(row.get("measured_at") or "") >= str(
            latest[key].get("measured_at") or ""
        ):
            latest[key] = row
    return list(latest.values())


def join_points(
    results: BenchResults, accuracy: Sequence[AccuracyEntry], *, stat: str = "min_ms"
) -> tuple[list[Point], list[str]]:
    """Points of every bench row whose model has an accuracy entry at the row's resolution.

    Returns the points and, for rows without such an entry, ``model@size`` (reported, not guessed: an
    accuracy at another resolution is another model as far as latency goes).
    """
    if stat not in STATS:
        raise ValueError(f"unknown latency statistic {stat!r}; choose from {', '.join(STATS)}")
    by_size: dict[tuple[str, int], list[AccuracyEntry]] = {}
    for entry in accuracy:
        by_size.setdefault((entry.model, entry.input_size), []).append(entry)
    points: list[Point] = []
    missing: list[str] = []
    for row in _latest(results.rows):
        size = int(row["input_size"])
        matches = by_size.get((row["model"], size), [])
        if not matches:
            missing.append(f"{row['model']}@{size}")
        for entry in matches:
            points.append(
                Point(
                    model=row["model"],
                    tag=entry.tag,
                    input_size=size,
                    runtime=row["runtime"],
                    machine=results.label,
                    top1=entry.top1,
                    latency_ms=float(row[stat]),
                    macs=None if row.get("macs") is None else float(row["macs"]),
                    params=None if row.get("params") is None else float(row["params"]),
                    source=str(row.get("source") or "").strip() or "unknown",
                    kind=str(row.get("kind") or "").strip() or "convnet",
                    accuracy_source=entry.source_kind,
                    precision=str((row.get("environment") or {}).get("precision") or "fp32"),
                )
            )
    return points, sorted(set(missing))


def groups(points: Iterable[Point]) -> dict[tuple[str, str], list[Point]]:
    """Points by (machine, runtime), in first-seen order: one front each."""
    out: dict[tuple[str, str], list[Point]] = {}
    for p in points:
        out.setdefault((p.machine, p.runtime), []).append(p)
    return out


def front_labels(points: Sequence[Point], axis: str) -> set[str]:
    """Labels of the points on the ``axis`` front."""
    return {p.label for p in front_of(points, axis)}


def front_counts(points: Sequence[Point]) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (runtime, label): on how many machines' latency fronts it is, of how many machines that timed it."""
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for (_, runtime), group in groups(points).items():
        front = front_labels(group, "latency")
        for p in group:
            hits, total = counts.get((runtime, p.label), (0, 0))
            counts[(runtime, p.label)] = (hits + (p.label in front), total + 1)
    return counts


def consensus(points: Sequence[Point]) -> dict[tuple[str, str], str]:
    """Per (runtime, label): on the latency front of every / most / some / none of the machines that timed it."""
    verdicts = {}
    for key, (hits, total) in front_counts(points).items():
        if hits == total:
            verdicts[key] = "every"
        elif hits > total / 2:
            verdicts[key] = "most"
        elif hits:
            verdicts[key] = "some"
        else:
            verdicts[key] = "none"
    return verdicts


def measure_rows(
    entries: Sequence[AccuracyEntry],
    runtimes: Sequence[str],
    out_dir: str | Path,
    *,
    threads: int,
    resume: bool = False,
    runs: int = 1000,
    warmup: int = 50,
    max_seconds: float | None = 1.0,
    on_start: Callable[[Any, str], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Time every entry's model at its weights' resolution with bench's sweep, into ``out_dir``; returns it.

    One sweep per resolution shares the folder (bench keys rows by resolution), so ``resume`` skips what
    is already there and an interrupted run keeps every row it finished.
    """
    from mobilebone.analysis.sweep import Sweep, SweepSettings
    from mobilebone.analysis.zoo import resolve_models

    sizes: dict[int, list[str]] = {}
    for entry in entries:
        names = sizes.setdefault(entry.input_size, [])
        if entry.model not in names:
            names.append(entry.model)
    sweep = None
    for i, (size, names) in enumerate(sorted(sizes.items())):
        settings = SweepSettings(
            runtimes=tuple(runtimes),
            threads=threads,
            runs=runs,
            warmup=warmup,
            input_size=size,
            max_seconds=max_seconds,
        )
        sweep = Sweep(out_dir, settings, resume=resume or i > 0)
        sweep.run(resolve_models(names), on_start=on_start, on_row=on_row)
    if sweep is not None:
        sweep.finish()
    return Path(out_dir)


@dataclass(frozen=True)
class ExportRecipe:
    """The ``mobilebone export`` call that produces what a runtime timed: format, file suffix, extra flags."""

    format: str
    suffix: str
    flags: str = ""


# What `bench` timed in each runtime comes from `mobilebone export` (ONNX for ONNX Runtime, with its int8
# recipe for onnxruntime-int8; TorchScript for PyTorch). Every other runtime (OpenVINO, ExecuTorch, LiteRT,
# the tuned int8) is built, verified against PyTorch and written by `mobilebone deploy --runtimes RT`.
EXPORT_RECIPES = {
    "onnxruntime": ExportRecipe("onnx", ".onnx"),
    "onnxruntime-cuda": ExportRecipe("onnx", ".onnx"),
    "onnxruntime-int8": ExportRecipe("onnx", ".onnx", " --int8"),
    "eager": ExportRecipe("torchscript", ".pt"),
    "compile": ExportRecipe("torchscript", ".pt"),
    "cuda": ExportRecipe("torchscript", ".pt"),
}


@dataclass(frozen=True)
class Choice:
    """The pick: the most accurate weights and runtime whose latency fits the budget on every machine."""

    point: Point
    worst_ms: float
    machines: tuple[str, ...]

    def export_command(self) -> str | None:
        """The ``mobilebone export`` (or, for runtimes export does not write, ``mobilebone deploy``) command
        that produces the picked model for its runtime; None for torchvision/timm peers."""
        if not self.point.ours:
            return None
        p = self.point
        recipe = EXPORT_RECIPES.get(p.runtime)
        if recipe is None:
            return (
                f"mobilebone deploy {p.model} --weights {p.weights} --runtimes {p.runtime} "
                f"--input-size {p.input_size} --out {p.model}-{p.runtime}"
            )
        name = p.model + ("_int8" if recipe.flags else "")
        return (
            f"mobilebone export {p.model} --weights {p.weights} --format {recipe.format}{recipe.flags} "
            f"--input-size {p.input_size} --out {name}{recipe.suffix}"
        )


def pick(points: Sequence[Point], budget_ms: float, runtimes: Sequence[str] = ()) -> Choice | None:
    """Highest top-1 among weights × runtime timed on every machine and within ``budget_ms`` on each.

    Ties go to the lower worst-case latency. ``runtimes`` restricts the choice (empty: any runtime).
    """
    machines = tuple(dict.fromkeys(p.machine for p in points))
    by_key: dict[tuple[str, str, int, str], list[Point]] = {}
    for p in points:
        if not runtimes or p.runtime in runtimes:
            by_key.setdefault((p.model, p.tag, p.input_size, p.runtime), []).append(p)
    best: Choice | None = None
    for timed in by_key.values():
        if {p.machine for p in timed} != set(machines):
            continue
        worst = max(timed, key=lambda p: p.latency_ms)
        if worst.latency_ms > budget_ms:
            continue
        choice = Choice(worst, worst.latency_ms, machines)
        if best is None or (choice.point.top1, -choice.worst_ms) > (best.point.top1, -best.worst_ms):
            best = choice
    return best
