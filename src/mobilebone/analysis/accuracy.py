"""Published ImageNet-1k accuracy of the zoo's weights, kept as data (``mobilebone/data/accuracy.csv``).

One row per (zoo model, weight tag, eval resolution, source): top-1, top-5 where published, and where the
number comes from — timm's ``results/results-imagenet.csv`` (URL with commit), torchvision's
``Weights.meta["_metrics"]``, or the MobileOne paper's numbers as Apple's README lists them. Users add
their own numbers (e.g. from ``mobilebone eval``) in a CSV with the same columns; ``source_kind`` defaults
to ``user`` there, and a user's number wins over the published ones for the same weights and resolution.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# Which source wins when several give a number for the same weights at the same resolution: the user's
# own evaluation, then timm's re-evaluation (one protocol for every timm-hosted weight), then the
# weights' own metadata, then the paper.
SOURCE_KINDS = ("user", "timm-results", "torchvision", "paper")
REQUIRED_COLUMNS = ("model", "tag", "input_size", "top1")
COLUMNS = (*REQUIRED_COLUMNS, "top5", "source_kind", "source", "notes")
PACKAGED = "accuracy.csv"


@dataclass(frozen=True)
class AccuracyEntry:
    """One published (or user-measured) ImageNet-1k result of one set of weights at one resolution."""

    model: str
    tag: str
    input_size: int
    top1: float
    top5: float | None
    source_kind: str
    source: str
    notes: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        """What two entries must share to describe the same measurement: model, tag, resolution."""
        return (self.model, self.tag, self.input_size)

    @property
    def weights(self) -> str:
        """``arch.tag`` as ``create_model`` / timm / torchvision name the weights."""
        return f"{self.model.rsplit('/', 1)[-1]}.{self.tag}"


def _number(text: str, column: str, where: str, *, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {column} must be a number, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{where}: {column} must be in [{low:g}, {high:g}], got {value:g}")
    return value


def parse_accuracy_csv(text: str, *, origin: str, default_kind: str = "user") -> list[AccuracyEntry]:
    """Entries of an accuracy CSV; a missing column or a bad value raises a one-line ``ValueError``."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(
            f"{origin}: missing column(s) {', '.join(missing)}; an accuracy CSV needs "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: top5, source_kind, source, notes)"
        )
    entries = []
    for line, row in enumerate(reader, start=2):
        where = f"{origin} line {line}"
        if not (row.get("model") or "").strip() or not (row.get("tag") or "").strip():
            raise ValueError(f"{where}: model and tag must not be empty")
        kind = (row.get("source_kind") or "").strip() or default_kind
        if kind not in SOURCE_KINDS:
            raise ValueError(f"{where}: source_kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        size = _number(row["input_size"], "input_size", where, low=16, high=4096)
        if size != int(size):
            raise ValueError(f"{where}: input_size must be an integer, got {row['input_size']!r}")
        top5 = (row.get("top5") or "").strip()
        entries.append(
            AccuracyEntry(
                model=row["model"].strip(),
                tag=row["tag"].strip(),
                input_size=int(size),
                top1=_number(row["top1"], "top1", where, low=0, high=100),
                top5=_number(top5, "top5", where, low=0, high=100) if top5 else None,
                source_kind=kind,
                source=(row.get("source") or "").strip() or origin,
                notes=(row.get("notes") or "").strip(),
            )
        )
    return entries


def packaged_accuracy() -> list[AccuracyEntry]:
    """The published numbers shipped with mobilebone (every zoo model that has weights)."""
    text = (resources.files("mobilebone") / "data" / PACKAGED).read_text(encoding="utf-8")
    return parse_accuracy_csv(text, origin=PACKAGED, default_kind="paper")


def read_accuracy_file(path: str | Path) -> list[AccuracyEntry]:
    """A user's accuracy CSV (same columns as the packaged file; ``source_kind`` defaults to ``user``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--accuracy {path}: no such file")
    return parse_accuracy_csv(path.read_text(encoding="utf-8"), origin=str(path))


def load_accuracy(extra: Sequence[str | Path] = ()) -> list[AccuracyEntry]:
    """The packaged entries followed by those of each ``extra`` CSV."""
    entries = packaged_accuracy()
    for path in extra:
        entries += read_accuracy_file(path)
    return entries


def preferred(entries: Iterable[AccuracyEntry]) -> dict[tuple[str, str, int], AccuracyEntry]:
    """One entry per (model, tag, resolution): the one whose source ranks first in ``SOURCE_KINDS``.

    Keys keep first-seen order, so a model's first listed tag stays its default.
    """
    best: dict[tuple[str, str, int], AccuracyEntry] = {}
    for entry in entries:
        current = best.get(entry.key)
        if current is None or SOURCE_KINDS.index(entry.source_kind) < SOURCE_KINDS.index(current.source_kind):
            best[entry.key] = entry
    return best


def default_entries(entries: Iterable[AccuracyEntry], *, all_tags: bool = False) -> list[AccuracyEntry]:
    """Per model its first listed weights (its default tag at that tag's resolution) and every user entry; or all."""
    chosen: list[AccuracyEntry] = []
    seen: set[str] = set()
    for entry in preferred(entries).values():
        if all_tags or entry.model not in seen or entry.source_kind == "user":
            chosen.append(entry)
            seen.add(entry.model)
    return chosen
