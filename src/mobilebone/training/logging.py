"""Run logs on rank 0: a rich progress bar, ``metrics.csv`` (one row per epoch) and TensorBoard scalars.

``metrics.csv`` is small (one row per epoch), so each new row rewrites it through ``mobilebone.atomic``:
a crash or a full disk mid-write leaves the previous file whole, never a half row.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mobilebone.atomic import atomic_open


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.exists():
        return [], []
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _write_csv(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(path) as handle:
        handle.write(text.getvalue().encode("utf-8"))


class RunLogger:
    """CSV + TensorBoard writer; every method is a no-op on ranks other than 0."""

    def __init__(
        self, out: Path, *, enabled: bool, purge_step: int | None = None, epochs_done: int | None = None
    ) -> None:
        self.enabled = enabled
        self.csv_path = out / "metrics.csv"
        self.writer: Any = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run logged after its last checkpoint (they are re-done).
            self.writer = SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=purge_step)
            if epochs_done is not None:
                self._keep_epochs(epochs_done)

    def _keep_epochs(self, epochs_done: int) -> None:
        """Drop CSV rows of epochs after ``epochs_done`` (a killed run logged them; the resume redoes them)."""
        fields, rows = _read_csv(self.csv_path)
        rows = [r for r in rows if r.get("epoch", "").isdigit()]
        kept = [r for r in rows if int(r["epoch"]) <= epochs_done]
        if fields and len(kept) != len(rows):
            _write_csv(self.csv_path, fields, kept)

    def scalars(self, step: int, **values: float) -> None:
        """TensorBoard points at ``step`` (tags such as ``train/loss``)."""
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def epoch_row(self, row: dict[str, Any]) -> None:
        """Add one row to ``metrics.csv`` (columns: the file's, else this row's keys), atomically."""
        if not self.enabled:
            return
        fields, rows = _read_csv(self.csv_path)
        fields = fields or list(row)
        _write_csv(self.csv_path, fields, [*rows, {k: _fmt(row.get(k)) for k in fields}])

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


class _Bar:
    """An epoch's progress bar (rich, on stderr) with a tqdm-like ``update`` / ``set_postfix`` / ``close``."""

    def __init__(self, total: int, *, initial: int, desc: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[postfix]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task(desc, total=total, completed=initial, postfix="")
        self.progress.start()

    def update(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def set_postfix(self, **values: str) -> None:
        self.progress.update(self.task, postfix=" ".join(f"{k}={v}" for k, v in values.items()))

    def close(self) -> None:
        self.progress.stop()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, *, initial: int, desc: str, enabled: bool) -> Any:
    """A progress bar over an epoch's batches (a no-op off rank 0)."""
    return _Bar(total, initial=initial, desc=desc) if enabled else _NoBar()
