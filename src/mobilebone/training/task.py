"""The task interface: what a task (classification, detection, segmentation) gives the training loop.

``train(cfg, task=...)`` runs any object with this shape; the loop owns everything that is the same for
every task: the run folder and its lock, sampling and resume, the optimizer and its schedules, EMA,
mixed precision, DDP, checkpoints, logging and the deploy check. A task owns what differs:

- ``build_data(cfg)`` → ``TaskData``: the training set (items already transformed, augmentation seeded per
  sample through ``set_epoch``; ``training.data.Transformed`` does this for any ``(image, target)`` set),
  the validation set, the class names and the eval preprocessing stored with the weights.
- ``collate(samples)``: a list of dataset items → one batch (``torch.utils.data.default_collate`` for
  fixed-size tensors; detection returns lists of images and target dicts).
- ``build_model(cfg, num_classes)``: the train-time model.
- ``loss(model, batch, device)`` → ``(loss, n)``: forward in train mode and the scalar loss; ``n`` is how
  many samples the batch held (throughput).
- ``evaluate(models, batches, info)`` → one ``dict[str, float]`` of metrics per model, all models scored on
  the same batches (summed over ranks under DDP). The dict holds ``primary_metric``.
- ``deploy(model)``: the inference form (MobileOne's branches folded), which must score the same.
- ``primary_metric`` (e.g. ``"top1"``, ``"map50"``, ``"miou"``) and ``higher_is_better``: which score picks
  ``model_best`` and which score the deploy check compares.

Optionally, a task whose weights have their own file format (detectors, segmenters) defines
``save_weights(model, path, cfg, classes, extra)`` and ``load_weights(model, path)`` (``WeightsFormat``);
without them the loop writes and reads the classification format (``checkpoints.save_native``).

A detection task, for example, implements these seven members and calls ``train(cfg, task=MyTask())``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from mobilebone.training.config import TrainConfig
from mobilebone.training.distributed import DistInfo


@dataclass
class TaskData:
    """A task's data: transformed train and val sets, class names, and the eval preprocessing to store."""

    train: Any  # a Dataset with set_epoch(epoch) (seeded augmentation) and __len__
    val: Any  # a Dataset of eval-transformed items
    classes: list[str]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    description: str = ""  # for the start-up line, e.g. "the embedded shapes set"


@runtime_checkable
class Task(Protocol):
    """What a task supplies to ``train``; see the module docstring."""

    name: str
    primary_metric: str
    higher_is_better: bool

    def build_data(self, cfg: TrainConfig) -> TaskData:
        """Train and val sets, class names and preprocessing."""
        ...

    def collate(self, samples: list[Any]) -> Any:
        """Samples → one batch."""
        ...

    def build_model(self, cfg: TrainConfig, num_classes: int) -> nn.Module:
        """The train-time model."""
        ...

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        """Forward ``batch`` through ``model`` (train mode) → (scalar loss, samples in the batch)."""
        ...

    def evaluate(
        self, models: Sequence[nn.Module], batches: Iterable[Any], info: DistInfo
    ) -> list[dict[str, float]]:
        """Metrics of every model on the same batches (one dict per model, with ``primary_metric``)."""
        ...

    def deploy(self, model: nn.Module) -> nn.Module:
        """The inference form of ``model`` (a new module; ``model`` is left as it is)."""
        ...


@runtime_checkable
class WeightsFormat(Protocol):
    """A task's own weights file format (optional: the loop's default is ``checkpoints.save_native``)."""

    def save_weights(
        self, model: nn.Module, path: Path, cfg: TrainConfig, classes: list[str], extra: dict[str, str]
    ) -> None:
        """Write ``model``'s weights with the run's config, class names and ``extra`` metadata."""
        ...

    def load_weights(self, model: nn.Module, path: Path) -> None:
        """Load ``path`` into ``model`` (strictly)."""
        ...


def better(task: Task, score: float, best: float | None) -> bool:
    """Whether ``score`` beats ``best`` (None: nothing yet) in the task's direction."""
    if best is None:
        return True
    return score > best if task.higher_is_better else score < best
