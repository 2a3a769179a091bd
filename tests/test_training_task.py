"""The task interface: a task other than classification trains on the same loop without copying it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from mobilebone.training import TaskData, resolve_config, train
from mobilebone.training.classification import ClassificationTask
from mobilebone.training.distributed import DistInfo
from mobilebone.training.task import Task


class _Pairs(Dataset[Any]):
    """A toy dense task: 8×8 images whose target is the per-pixel mean colour (a tuple, not a label)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 3, 32, 32, generator=g)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Any:
        return {"image": self.x[i], "target": self.x[i].mean(0, keepdim=True)}


class _MeanTask:
    """Predict the mean channel of each image; the metric is an error (lower is better)."""

    name = "toy-dense"
    primary_metric = "mse"
    higher_is_better = False

    def __init__(self) -> None:
        self.collated = 0

    def build_data(self, cfg: Any) -> TaskData:
        return TaskData(train=_Pairs(24, 0), val=_Pairs(8, 1), classes=["mean"], description="toy pairs")

    def collate(self, samples: list[Any]) -> Any:
        self.collated += 1
        return torch.stack([s["image"] for s in samples]), torch.stack([s["target"] for s in samples])

    def build_model(self, cfg: Any, num_classes: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        x, y = batch
        return nn.functional.mse_loss(model(x), y), len(x)

    def evaluate(
        self, models: Sequence[nn.Module], batches: Iterable[Any], info: DistInfo
    ) -> list[dict[str, float]]:
        sums = [0.0] * len(models)
        n = 0
        with torch.no_grad():
            for x, y in batches:
                for i, m in enumerate(models):
                    m.eval()
                    sums[i] += float(nn.functional.mse_loss(m(x), y, reduction="sum"))
                n += y.numel()
        return [{"mse": s / n} for s in sums]

    def deploy(self, model: nn.Module) -> nn.Module:
        return model


def test_classification_implements_the_task_interface() -> None:
    assert isinstance(ClassificationTask(resolve_config()), Task)
    assert isinstance(_MeanTask(), Task)


def test_another_task_trains_on_the_same_loop(tmp_path: Path) -> None:
    cfg = resolve_config(out=str(tmp_path / "run"), epochs=2, batch_size=8, workers=0, lr=0.01, ema_decay=0.0)
    task = _MeanTask()
    result = train(cfg, task=task)
    assert result.metric == "mse" and result.train_form["mse"] == result.deploy_form["mse"]
    assert task.collated >= 2 * 3  # its collate built the batches (3 per epoch)
    rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].split(",")[:2] == ["epoch", "step"] and "val_mse" in rows[0] and len(rows) == 3
    # lower is better: the best score is the smallest epoch score
    scores = [float(r.split(",")[rows[0].split(",").index("val_mse")]) for r in rows[1:]]
    assert scores[0] != scores[1] and result.best_score == pytest.approx(min(scores), rel=1e-5)
