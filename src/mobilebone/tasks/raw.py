"""Raw head outputs, before box decoding and NMS: what the fusion and export checks compare.

``DetectionHeadOutputs`` maps a batch already resized to the detector's input size (values in [0, 1]) to
``(bbox_regression (N, A, 4), cls_logits (N, A, C))``; decoding them against the model's anchors is what
torchvision's ``postprocess_detections`` does. ``SegmentationLogits`` returns the ``"out"`` logits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class DetectionHeadOutputs(nn.Module):
    """Normalize → backbone (+ FPN / extra blocks) → head, without anchors, decoding or NMS."""

    mean: Tensor
    std: Tensor

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.backbone: nn.Module = detector.backbone  # type: ignore[assignment]
        self.head: nn.Module = detector.head  # type: ignore[assignment]
        transform: Any = detector.transform
        self.register_buffer("mean", torch.as_tensor(transform.image_mean).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(transform.image_std).reshape(1, -1, 1, 1))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = list(self.backbone((images - self.mean) / self.std).values())
        out = self.head(features)
        return out["bbox_regression"], out["cls_logits"]


class SegmentationLogits(nn.Module):
    """The ``"out"`` logits of a torchvision-style segmenter, as a plain tensor (no dict) for export."""

    def __init__(self, segmenter: nn.Module) -> None:
        super().__init__()
        self.segmenter = segmenter

    def forward(self, images: Tensor) -> Tensor:
        return self.segmenter(images)["out"]


def raw_outputs(model: nn.Module) -> nn.Module:
    """The raw-output view of a task model (shares its modules): detection heads or segmentation logits."""
    if hasattr(model, "head") and hasattr(model, "transform"):
        return DetectionHeadOutputs(model)
    return SegmentationLogits(model)
