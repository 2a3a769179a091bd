"""Semantic segmentation as a training task: per-pixel cross-entropy (label 255 ignored), mIoU picks the best."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from mobilebone.tasks.metrics import IGNORE_INDEX
from mobilebone.tasks.training.common import TaskModelTrainer, score_models, task_data
from mobilebone.training.config import TrainConfig
from mobilebone.training.distributed import DistInfo
from mobilebone.training.task import TaskData

# torchvision's segmentation reference weighs the auxiliary FCN head's loss by 0.5.
AUX_WEIGHT = 0.5


class SegmentationTask(TaskModelTrainer):
    """Fixed-size batches (random scale-crop to ``input_size``); DeepLabV3's auxiliary loss when enabled."""

    name = "segmentation"
    primary_metric = "miou"
    higher_is_better = True

    def build_data(self, cfg: TrainConfig) -> TaskData:
        """Random resized crop + flip at ``input_size`` for training; a resize to it for evaluation."""
        from mobilebone.tasks.data.transforms import segmentation_transforms

        size = cfg.input_size
        return task_data(cfg, segmentation_transforms(True, size), segmentation_transforms(False, size))

    def collate(self, samples: list[Any]) -> Any:
        """``(images (N, 3, H, W), labels (N, H, W) int64)``."""
        images = torch.stack([s[0].as_subclass(torch.Tensor) for s in samples])
        labels = torch.stack([s[1]["semantic"].as_subclass(torch.Tensor) for s in samples]).long()
        return images, labels

    def build_model(self, cfg: TrainConfig, num_classes: int) -> nn.Module:
        """``create_segmenter``; ``cfg.aux_loss`` adds DeepLabV3's auxiliary head."""
        from mobilebone.tasks.factory import create_segmenter

        return create_segmenter(
            cfg.model, num_classes, backbone_weights=cfg.backbone_weights, aux_loss=cfg.aux_loss or None
        )

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        """Cross-entropy of ``out`` (+ ``AUX_WEIGHT`` × that of ``aux``), ignoring label 255."""
        images, labels = (t.to(device, non_blocking=True) for t in batch)
        out = model(images)
        loss = nn.functional.cross_entropy(out["out"], labels, ignore_index=IGNORE_INDEX)
        if "aux" in out:
            loss = loss + AUX_WEIGHT * nn.functional.cross_entropy(
                out["aux"], labels, ignore_index=IGNORE_INDEX
            )
        return loss, len(images)

    def evaluate(
        self, models: Sequence[nn.Module], batches: Iterable[Any], info: DistInfo
    ) -> list[dict[str, float]]:
        """mIoU and pixel accuracy in percent, and the max |logit difference| to the first model."""
        from mobilebone.tasks.metrics import SegmentationMetric

        def outputs(models: Sequence[nn.Module], batch: Any) -> list[tuple[Any, tuple[torch.Tensor, ...]]]:
            images = batch[0].to(info.device, non_blocking=True)
            logits = [m(images)["out"].float() for m in models]
            return [(out, (out,)) for out in logits]

        num_classes = int(models[0].num_classes)  # type: ignore[arg-type]
        metrics = [SegmentationMetric(num_classes) for _ in models]
        scores, diffs, count = score_models(models, batches, metrics, outputs)
        return [
            {
                "miou": 100.0 * score.miou,
                "pixel_accuracy": 100.0 * score.pixel_accuracy,
                "count": count,
                "max_logit_diff": diff,
            }
            for score, diff in zip(scores, diffs, strict=True)
        ]
