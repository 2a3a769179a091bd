"""Object detection as a training task: torchvision's SSDLite / RetinaNet losses, COCO mAP@.5 picks the best."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from mobilebone.tasks.training.common import TaskModelTrainer, score_models, task_data
from mobilebone.training.config import TrainConfig
from mobilebone.training.distributed import DistInfo
from mobilebone.training.task import TaskData


class DetectionTask(TaskModelTrainer):
    """Batches are lists (images keep their own size; the model resizes); loss = sum of the loss dict."""

    name = "detection"
    primary_metric = "map50"
    higher_is_better = True

    def build_data(self, cfg: TrainConfig) -> TaskData:
        """Flip + photometric jitter for training; degenerate boxes removed (``detection_transforms``)."""
        from mobilebone.tasks.data.transforms import detection_transforms

        return task_data(cfg, detection_transforms(True), detection_transforms(False))

    def collate(self, samples: list[Any]) -> Any:
        """``(images, targets)``: a list of ``(3, H, W)`` tensors and a list of ``{"boxes", "labels"}``."""
        images = [s[0] for s in samples]
        targets = [
            {"boxes": s[1]["boxes"].as_subclass(torch.Tensor), "labels": s[1]["labels"]} for s in samples
        ]
        return images, targets

    def build_model(self, cfg: TrainConfig, num_classes: int) -> nn.Module:
        """``create_detector`` at ``cfg.input_size``, the backbone from ``cfg.backbone_weights`` when given."""
        from mobilebone.tasks.factory import create_detector

        return create_detector(
            cfg.model, num_classes, backbone_weights=cfg.backbone_weights, size=cfg.input_size
        )

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        """Classification + box-regression losses of torchvision's detector, summed."""
        images, targets = batch
        images = [i.to(device, non_blocking=True) for i in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        losses = model(images, targets)
        return torch.stack(list(losses.values())).sum(), len(images)

    def evaluate(
        self, models: Sequence[nn.Module], batches: Iterable[Any], info: DistInfo
    ) -> list[dict[str, float]]:
        """COCO box mAP@[.5:.95] and mAP@.5 in percent (torchmetrics syncs them over ranks), and the max
        |raw head output difference| to the first model (box regressions and class logits before decoding,
        on the batch resized to the input size: what reparameterization must preserve)."""
        from mobilebone.tasks.metrics import DetectionMetric
        from mobilebone.tasks.raw import raw_outputs

        views = [raw_outputs(m) for m in models]

        def outputs(models: Sequence[nn.Module], batch: Any) -> list[tuple[Any, tuple[torch.Tensor, ...]]]:
            images = [i.to(info.device, non_blocking=True) for i in batch[0]]
            if len(models) == 1:  # nothing to compare: skip the raw pass
                return [(models[0](images), ())]
            resized = _at_input_size(images, int(models[0].input_size))  # type: ignore[arg-type]
            return [(m(images), tuple(view(resized))) for m, view in zip(models, views, strict=True)]

        metrics = [DetectionMetric() for _ in models]
        scores, diffs, count = score_models(models, batches, metrics, outputs)
        return [
            {"map50": 100.0 * score.map_50, "map": 100.0 * score.map, "count": count, "max_logit_diff": diff}
            for score, diff in zip(scores, diffs, strict=True)
        ]


def _at_input_size(images: list[torch.Tensor], size: int) -> torch.Tensor:
    """The images resized to ``size`` × ``size`` (bilinear) as one batch, for the raw-output comparison."""
    resize = torch.nn.functional.interpolate
    return torch.cat([resize(i[None].float(), size=(size, size), mode="bilinear") for i in images])
