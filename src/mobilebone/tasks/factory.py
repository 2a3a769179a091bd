"""``create_detector`` and ``create_segmenter``: build a registered task model by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from mobilebone.tasks.backbone import level_specs
from mobilebone.tasks.registry import get_task_entry


def _build(
    name: str, task: str, num_classes: int, backbone_weights: str | Path | None, **kw: Any
) -> nn.Module:
    entry = get_task_entry(name, task)  # type: ignore[arg-type]
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (it counts the background / label 0), got {num_classes}")
    unknown = sorted(set(kw) - set(entry.head.options))
    if unknown:
        allowed = ", ".join(entry.head.options) or "none"
        raise ValueError(f"{entry.head.name} models take no option {unknown}; options: {allowed}")
    model = entry.head.build(entry.backbone, num_classes, weights=backbone_weights, **kw)
    model.task_name = entry.name  # type: ignore[assignment]
    model.num_classes = num_classes  # type: ignore[assignment]
    model.input_size = kw.get("size", entry.input_size)  # type: ignore[assignment]
    if entry.task == "segmentation":  # the stride of the deepest level the head reads
        levels = level_specs(model.backbone.body.feature_info)  # type: ignore[union-attr]
        model.output_stride = max(level.stride for level in levels)  # type: ignore[assignment]
    return model


def create_detector(
    name: str, num_classes: int = 91, *, backbone_weights: str | Path | None = None, size: int | None = None
) -> nn.Module:
    """A detector such as ``ssdlite_mobileone_s0``; ``num_classes`` counts the background (label 0).

    ``backbone_weights`` (a classification checkpoint or weight tag) initializes the backbone strictly; the
    head is new. ``size`` overrides the square input size (SSDLite 320, RetinaNet 384).
    """
    options = {} if size is None else {"size": size}
    return _build(name, "detection", num_classes, backbone_weights, **options)


def create_segmenter(
    name: str,
    num_classes: int = 21,
    *,
    backbone_weights: str | Path | None = None,
    aux_loss: bool | None = None,
    output_stride: int | None = None,
) -> nn.Module:
    """A segmenter such as ``deeplabv3_mobileone_s4``; ``num_classes`` includes the background (class 0).

    ``aux_loss`` (DeepLabV3 only) adds the auxiliary FCN head. ``output_stride`` is 16 (the default: the
    backbone's last stage dilated, as torchvision's MobileNetV3 segmenters) or 32. Inputs of any size ≥ 32 px
    are accepted; 512×512 is the default training and evaluation size.
    """
    options: dict[str, Any] = {} if aux_loss is None else {"aux_loss": aux_loss}
    if output_stride is not None:
        options["output_stride"] = output_stride
    return _build(name, "segmentation", num_classes, backbone_weights, **options)
