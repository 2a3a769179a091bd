"""Run logs on rank 0: a tqdm progress bar, ``metrics.csv`` (one row per epoch) and TensorBoard scalars."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

CSV_FIELDS = (
    "epoch",
    "step",
    "lr",
    "weight_decay",
    "train_loss",
    "train_images_per_s",
    "val_top1",
    "val_top5",
    "val_loss",
    "model_top1",
    "epoch_time_s",
)


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
        if not self.csv_path.exists():
            return
        with self.csv_path.open(newline="", encoding="utf-8") as file:
            rows = [r for r in csv.DictReader(file) if r.get("epoch", "").isdigit()]
        kept = [r for r in rows if int(r["epoch"]) <= epochs_done]
        if len(kept) == len(rows):
            return
        tmp = self.csv_path.with_name(f".{self.csv_path.name}.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        tmp.replace(self.csv_path)

    def scalars(self, step: int, **values: float) -> None:
        """TensorBoard points at ``step`` (tags ``train/<name>``)."""
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def epoch_row(self, row: dict[str, Any]) -> None:
        """Append one row to ``metrics.csv`` (header written once) and flush it."""
        if not self.enabled:
            return
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=CSV_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in CSV_FIELDS})

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def progress(total: int, *, initial: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over an epoch's batches (disabled off rank 0)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True, leave=True)
