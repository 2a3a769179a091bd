"""The result of ``mobilebone.deploy.search``: every candidate with its verification and timing, and the
files ``mobilebone deploy`` writes (report.md, report.json, latency.png, the chosen artifact)."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CHOSEN, PASSED, REJECTED, UNAVAILABLE = "chosen", "passed", "rejected", "unavailable"
EAGER = "PyTorch eager, fused"  # the reference every search also times


@dataclass
class CandidateResult:
    """One runtime × precision: built or not, verified or rejected (with why), and how fast."""

    runtime: str
    precision: str
    help: str
    status: str
    tolerance: float
    error: str = ""
    top1_agreement: float = float("nan")
    max_relative_error: float = float("nan")  # worst image's max |a - b| / max |b|
    median_relative_error: float = float("nan")  # the median image's
    median_ms: float = float("nan")
    round_minima_ms: list[float] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        """Whether it passed verification (chosen or not)."""
        return self.status in (CHOSEN, PASSED)


@dataclass
class DeployReport:
    """Every candidate of one search, the chosen one, and what the numbers rest on."""

    model: str
    input_size: tuple[int, int]
    threads: int
    max_agreement_drop: float
    weights: str
    held_out: str
    calibration: str
    num_held_out: int
    fp32_distinct_top1: int
    candidates: list[CandidateResult]
    references_ms: dict[str, float] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> CandidateResult | None:
        """The fastest verified candidate (None when none passed)."""
        return next((c for c in self.candidates if c.status == CHOSEN), None)

    def baseline_ms(self) -> float:
        """ONNX Runtime float32's time in this run (NaN when it was not timed)."""
        return next((c.median_ms for c in self.candidates if c.runtime == "onnxruntime"), float("nan"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN becomes null)."""
        data = asdict(self)
        data["chosen"] = self.chosen.runtime if self.chosen else None
        return _finite(data)

    def table(self) -> list[str]:
        """The candidates as Markdown table rows (fastest verified first, then rejected, then unavailable)."""
        base = self.baseline_ms()
        rows = [
            "| runtime | precision | status | ms | × ORT fp32 | top-1 agreement | max rel. error | note |",
            "|---|---|---|---:|---:|---:|---:|---|",
        ]
        for c in self.candidates:
            ratio = c.median_ms / base if math.isfinite(base) and math.isfinite(c.median_ms) else float("nan")
            rows.append(
                f"| {c.runtime} | {c.precision} | {c.status} | {_num(c.median_ms, '.2f')} | {_num(ratio, '.2f')} "
                f"| {_num(100 * c.top1_agreement, '.1f', ' %')} | {_num(c.max_relative_error, '.1e')} "
                f"| {c.error.replace('|', '/')[:160]} |"
            )
        for name, ms in self.references_ms.items():
            rows.append(
                f"| {name} (reference) | fp32 | reference | {ms:.2f} | {_num(ms / base, '.2f')} | | | |"
            )
        return rows

    def markdown(self) -> str:
        """The whole report as Markdown."""
        chosen = self.chosen
        lines = [
            f"# Deploy report: {self.model} at {self.input_size[0]}×{self.input_size[1]}, {self.threads} threads",
            "",
            f"**Chosen:** {chosen.runtime} ({chosen.precision}), {chosen.median_ms:.2f} ms"
            if chosen
            else "**Chosen:** none: no candidate passed verification.",
            "",
            f"- weights: {self.weights}",
            f"- held-out images (verification): {self.held_out} ({self.num_held_out} images, "
            f"{self.fp32_distinct_top1} distinct fp32 top-1 classes)",
            f"- calibration images (int8): {self.calibration}",
            f"- a candidate passes when its top-1 agreement with PyTorch float32 drops by at most "
            f"{self.max_agreement_drop:g} percentage points and its max relative logit error is within its "
            "tolerance",
            "- latency: all candidates in one process, shuffled rounds, median of per-round minima",
            *[f"- {note}" for note in self.notes],
            "",
            *self.table(),
            "",
            "## Environment",
            "",
            *[f"- {k}: {v}" for k, v in self.environment.items()],
            "",
        ]
        return "\n".join(lines)

    def write(self, out: str | Path) -> list[Path]:
        """Write report.md, report.json, latency.png and the chosen artifact(s) into ``out``."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "report.md", folder / "report.json", folder / "latency.png"]
        written[0].write_text(self.markdown(), encoding="utf-8")
        written[1].write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        self.chart(written[2])
        return written

    def chart(self, path: Path) -> None:
        """Horizontal bars of every timed candidate (chosen highlighted) and the eager reference."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        timed = [c for c in self.candidates if math.isfinite(c.median_ms)]
        labels = [f"{c.runtime} ({c.precision})" for c in timed]
        values = [c.median_ms for c in timed]
        colours = ["tab:green" if c.status == CHOSEN else "tab:blue" for c in timed]
        for name, ms in self.references_ms.items():
            labels.append(name)
            values.append(ms)
            colours.append("tab:gray")
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.5))
        ax.barh(labels[::-1], values[::-1], color=colours[::-1])
        ax.set_xlabel("ms per image (median of per-round minima, interleaved)")
        cpu = self.environment.get("cpu", "CPU")
        ax.set_title(f"{self.model} {self.input_size[0]}px, {self.threads} threads\n{cpu}", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def copy_artifacts(candidate: CandidateResult, out: str | Path) -> list[Path]:
    """Copy a candidate's files into ``out`` (they live in a temporary folder during the search)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in candidate.artifacts:
        target = folder / Path(name).name
        shutil.copyfile(name, target)
        copied.append(target)
    return copied


def _num(value: float, spec: str, unit: str = "") -> str:
    return f"{value:{spec}}{unit}" if math.isfinite(value) else "–"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
