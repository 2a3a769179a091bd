"""Image classification as a training task: ImageFolder or the embedded set, cross-entropy, top-1/top-5."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import default_collate

from mobilebone.training.config import TrainConfig
from mobilebone.training.data import (
    Transformed,
    check_image_folder,
    image_folder,
    train_transform,
)
from mobilebone.training.distributed import DistInfo
from mobilebone.training.evaluate import evaluate
from mobilebone.training.task import TaskData


def preprocessing(cfg: TrainConfig) -> dict[str, Any]:
    """The eval preprocessing of the trained weights (stored in their ``pretrained_cfg``)."""
    from mobilebone.registry import get_entry

    default = get_entry(cfg.model).default_cfg
    return {
        "input_size": (3, cfg.input_size, cfg.input_size),
        "crop_pct": cfg.crop_pct,
        "interpolation": cfg.interpolation,
        "mean": tuple(default["mean"]),
        "std": tuple(default["std"]),
    }


def base_datasets(cfg: TrainConfig) -> tuple[Any, Any, list[str]]:
    """Train and val data (PIL images + labels) and the class names: ImageFolder or the embedded set."""
    if cfg.data is None:
        from mobilebone.training.synthetic import SyntheticShapes

        train = SyntheticShapes(
            "train", cfg.embedded_train, num_classes=cfg.embedded_classes, seed=cfg.data_seed
        )
        val = SyntheticShapes("val", cfg.embedded_val, num_classes=cfg.embedded_classes, seed=cfg.data_seed)
        return train, val, train.classes
    train_dir, val_dir = check_image_folder(cfg.data)
    train, val = image_folder(train_dir), image_folder(val_dir)
    if train.classes != val.classes:
        raise ValueError(
            f"--data {cfg.data}: train/ has {len(train.classes)} classes and val/ has {len(val.classes)} "
            f"(or other names); both need the same class folders"
        )
    if len(train.classes) < 2:
        raise ValueError(
            f"--data {cfg.data}: found {len(train.classes)} class folder; classification needs at least 2"
        )
    return train, val, list(train.classes)


class ClassificationTask:
    """Cross-entropy with label smoothing; top-1 picks the best weights; MobileOne-style reparameterization."""

    name = "classification"
    primary_metric = "top1"
    higher_is_better = True

    def __init__(self, cfg: TrainConfig) -> None:
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.channels_last = False  # set by the loop (GPU only)
        self.amp_dtype: torch.dtype | None = None  # eval autocast, set by the loop

    def build_data(self, cfg: TrainConfig) -> TaskData:
        """Seeded-augmentation train set and eval-transformed val set."""
        from mobilebone.transforms import eval_transform

        train_base, val_base, classes = base_datasets(cfg)
        pp = preprocessing(cfg)
        transform = train_transform(
            cfg.input_size,
            mean=pp["mean"],
            std=pp["std"],
            interpolation=cfg.interpolation,
            min_crop=cfg.min_crop,
            augment=cfg.augment,
        )
        skip = cfg.skip_bad_images
        return TaskData(
            train=Transformed(train_base, transform, seed=cfg.seed, skip_bad=skip),
            val=Transformed(val_base, eval_transform(pp), skip_bad=skip),
            classes=classes,
            preprocessing=pp,
            description=cfg.data or "the embedded shapes set",
        )

    def collate(self, samples: list[Any]) -> Any:
        """Stack images and labels."""
        return default_collate(samples)

    def build_model(self, cfg: TrainConfig, num_classes: int) -> nn.Module:
        """The registry's model with a ``num_classes`` head, started from ``cfg.backbone_weights`` when given
        (a weight tag or file; its classifier is kept when the class counts match, as timm's fine-tuning)."""
        from mobilebone import create_model

        return create_model(
            cfg.model,
            num_classes=num_classes,
            drop_path_rate=cfg.drop_path,
            pretrained=cfg.backbone_weights or False,
        )

    def _inputs(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        images = images.to(device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels.to(device, non_blocking=True)

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        """Cross-entropy of ``model`` on the batch."""
        images, labels = self._inputs(batch, device)
        return self.criterion(model(images), labels), int(labels.numel())

    def evaluate(
        self, models: Sequence[nn.Module], batches: Iterable[Any], info: DistInfo
    ) -> list[dict[str, float]]:
        """Top-1 / top-5 (percent), mean cross-entropy and the max |logit difference| to the first model."""
        results = evaluate(
            list(models), batches, info=info, amp_dtype=self.amp_dtype, channels_last=self.channels_last
        )
        return [
            {
                "top1": r.top1,
                "top5": r.top5,
                "loss": r.loss,
                "count": r.count,
                "max_logit_diff": r.max_logit_diff,
            }
            for r in results
        ]

    def deploy(self, model: nn.Module) -> nn.Module:
        """MobileOne / MobileNetV4 reparameterized: one conv per unit, the same function."""
        from mobilebone import reparameterize_model

        return reparameterize_model(model)
