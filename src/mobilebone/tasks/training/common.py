"""What detection and segmentation share as training tasks: data, model, deploy form and weights format."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mobilebone.tasks.data.layouts import Split
from mobilebone.tasks.data.synthetic import SyntheticShapes
from mobilebone.training.config import TrainConfig
from mobilebone.training.data import Transformed
from mobilebone.training.task import TaskData

# One batch through every model → per model: (what the metric scores, the raw tensors compared across models).
Outputs = Callable[[Sequence[nn.Module], Any], list[tuple[Any, tuple[torch.Tensor, ...]]]]


@torch.no_grad()
def score_models(
    models: Sequence[nn.Module], batches: Iterable[Any], metrics: Sequence[Any], outputs: Outputs
) -> tuple[list[Any], list[float], int]:
    """Run every model in eval mode on the same batches: each metric updated with its model's predictions,
    the max |raw output difference| of each model to the first one, and the image count. Training modes are
    restored afterwards. Returns ``(computed metrics, differences, count)``."""
    modes = [m.training for m in models]
    for m in models:
        m.eval()
    diffs, count = [0.0] * len(models), 0
    try:
        for batch in batches:
            results = outputs(models, batch)
            targets = batch[1]
            reference = results[0][1]
            for i, ((predictions, raw), metric) in enumerate(zip(results, metrics, strict=True)):
                metric.update(predictions, targets)
                for got, ref in zip(raw, reference, strict=True):
                    diffs[i] = max(diffs[i], float((got.float() - ref.float()).abs().max()))
            count += len(batch[0])
    finally:
        for m, mode in zip(models, modes, strict=True):
            m.train(mode)
    return [metric.compute() for metric in metrics], diffs, count


def open_split(cfg: TrainConfig, split: Split) -> tuple[Any, list[str], str]:
    """``split`` of the embedded shapes set (``cfg.data`` None) or of a ``--data-layout`` root, untransformed:
    ``(dataset, class names, description)``."""
    if cfg.data is None:
        length = cfg.embedded_train if split == "train" else cfg.embedded_val
        data = SyntheticShapes(split, length=length, size=cfg.input_size, seed=cfg.data_seed)
        return data, list(SyntheticShapes.classes), "the embedded shapes set"
    from mobilebone.tasks.data.layouts import get_layout, open_layout

    dataset, classes = open_layout(cfg.data, cfg.data_layout, cfg.task, split)
    return dataset, classes, f"{cfg.data} ({get_layout(cfg.data_layout, cfg.task).name} layout)"


def task_data(cfg: TrainConfig, train_transform: Any, val_transform: Any) -> TaskData:
    """Both splits, the training one with per-sample seeded augmentation; transforms move targets too."""
    train, classes, description = open_split(cfg, "train")
    val, _, _ = open_split(cfg, "val")
    return TaskData(
        train=Transformed(train, train_transform, seed=cfg.seed, joint=True),
        val=Transformed(val, val_transform, joint=True),
        classes=classes,
        description=description,
    )


class TaskModelTrainer:
    """Base of the detection and segmentation tasks: task-model weights files, reparameterized deploy form."""

    name = "task"
    primary_metric = ""
    higher_is_better = True

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.amp_dtype: Any = None  # set by the loop; evaluation runs in float32 here

    def deploy(self, model: nn.Module) -> nn.Module:
        """The backbone fused and each head BatchNorm folded (``reparameterize_task_model``)."""
        from mobilebone.tasks.reparam import reparameterize_task_model

        return reparameterize_task_model(model)

    def save_weights(
        self, model: nn.Module, path: Path, cfg: TrainConfig, classes: list[str], extra: dict[str, str]
    ) -> None:
        """A task-model file (``save_task_model``): ``mobilebone detect / segment / eval`` read it."""
        from mobilebone.tasks.checkpoint import save_task_model

        metadata = {"classes": json.dumps(classes), "training_config": cfg.to_json(), **extra}
        save_task_model(model, path, metadata)

    def load_weights(self, model: nn.Module, path: Path) -> None:
        """Load a file written by ``save_weights`` into ``model`` strictly."""
        from safetensors.torch import load_file

        from mobilebone.tasks.checkpoint import load_into

        load_into(model, load_file(str(path)), path, getattr(model, "task_name", "the model"))
