"""Task metrics through torchmetrics: COCO box mAP (pycocotools backend), mIoU and pixel accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

IGNORE_INDEX = 255


@dataclass(frozen=True)
class DetectionScores:
    """COCO box AP: ``map`` averaged over IoU .50:.95, ``map_50`` at IoU .50 (both in [0, 1])."""

    map: float
    map_50: float


class DetectionMetric:
    """Accumulate predictions and targets, then compute COCO mAP with torchmetrics' MeanAveragePrecision."""

    def __init__(self, backend: Literal["pycocotools", "faster_coco_eval"] = "pycocotools") -> None:
        from torchmetrics.detection import MeanAveragePrecision

        self._metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend=backend)
        # COCO scoring keeps each image's 100 best detections; torchvision's detectors return up to 300
        # (an untrained one always does), which is expected, not worth a warning per evaluation.
        self._metric.warn_on_many_detections = False

    def update(self, predictions: Sequence[dict[str, Tensor]], targets: Sequence[dict[str, Tensor]]) -> None:
        """Add a batch: predictions with ``boxes``/``scores``/``labels``, targets with ``boxes``/``labels``."""
        preds = [{k: p[k].detach().cpu() for k in ("boxes", "scores", "labels")} for p in predictions]
        truth = [{"boxes": t["boxes"].detach().cpu(), "labels": t["labels"].cpu()} for t in targets]
        self._metric.update(preds, truth)

    def compute(self) -> DetectionScores:
        """COCO mAP@[.5:.95] and mAP@.5 over everything added so far."""
        result = self._metric.compute()
        return DetectionScores(map=float(result["map"]), map_50=float(result["map_50"]))


@dataclass(frozen=True)
class SegmentationScores:
    """Mean IoU over classes present in predictions or targets, and pixel accuracy (both in [0, 1])."""

    miou: float
    pixel_accuracy: float


class SegmentationMetric:
    """mIoU (``JaccardIndex``) and pixel accuracy (micro ``Accuracy``) ignoring label 255."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

        self._iou = MulticlassJaccardIndex(num_classes, average="macro", ignore_index=ignore_index)
        self._acc = MulticlassAccuracy(num_classes, average="micro", ignore_index=ignore_index)

    def update(self, logits_or_labels: Tensor, target: Tensor) -> None:
        """Add a batch: ``(N, C, H, W)`` logits or ``(N, H, W)`` predicted labels, and ``(N, H, W)`` targets."""
        pred = logits_or_labels.argmax(1) if logits_or_labels.dim() == 4 else logits_or_labels
        pred, target = pred.detach().cpu(), target.detach().cpu().long()
        self._iou.update(pred, target)
        self._acc.update(pred, target)

    def compute(self) -> SegmentationScores:
        """mIoU and pixel accuracy over everything added so far."""
        return SegmentationScores(miou=float(self._iou.compute()), pixel_accuracy=float(self._acc.compute()))
