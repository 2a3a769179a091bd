"""Detectors on a mobilebone backbone, assembled from torchvision's detection components.

* SSDLite: torchvision's ``ssdlite320_mobilenet_v3_large`` recipe (``torchvision/models/detection/ssdlite.py``;
  MobileNetV3 paper, Howard et al. 2019, §6.2): the stride-16 and stride-32 levels, four extra
  depthwise-separable stride-2 blocks (512, 256, 256, 128 channels), ``DefaultBoxGenerator`` with ratios
  [2, 3] on six maps, ``SSDLiteHead``. One difference: torchvision taps the *expansion* output inside the
  last stride-16 block of MobileNetV3; mobilebone heads consume only declared levels, so the stride-16
  level's output is tapped instead.
* RetinaNet: torchvision's ``RetinaNet`` + ``FeaturePyramidNetwork`` on the stride 8/16/32 levels with P6/P7
  (Lin et al. 2017, "Focal Loss for Dense Object Detection"), as MobileNetV4 evaluates detection (MobileNetV4
  paper, Qin et al. 2024, §5.2). torchvision's FPN uses dense 3×3 convs, where the MobileNetV4 paper uses a
  depthwise-separable FPN.

``num_classes`` counts the background (label 0), as torchvision's detectors do. Both models resize every
image to a fixed square ``size`` inside their transform.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.retinanet import RetinaNet, RetinaNetHead, _default_anchorgen
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.ssdlite import SSDLiteHead, _extra_block, _normal_init
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

from mobilebone.tasks.backbone import NamedLevels, create_extractor

SSDLITE_EXTRA_CHANNELS = (512, 256, 256, 128)
FPN_CHANNELS = 256


def _mean_std(extractor: nn.Module) -> tuple[list[float], list[float]]:
    cfg = getattr(extractor, "pretrained_cfg", {}) or {}
    return list(cfg.get("mean", (0.485, 0.456, 0.406))), list(cfg.get("std", (0.229, 0.224, 0.225)))


def build_ssdlite(
    backbone: str, num_classes: int, *, weights: str | Path | None = None, size: int = 320
) -> SSD:
    """SSDLite (torchvision's MobileNetV3 recipe) on the stride-16/32 levels of ``backbone``."""
    extractor, levels = create_extractor(backbone, (16, 32), weights)
    # torchvision's SSDLite uses these BatchNorm settings throughout its extra blocks and head.
    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    extra = nn.ModuleList()
    in_chs = levels[-1].channels
    for out_chs in SSDLITE_EXTRA_CHANNELS:
        extra.append(_extra_block(in_chs, out_chs, norm_layer))
        in_chs = out_chs
    _normal_init(extra)
    body = NamedLevels(extractor, [str(i) for i in range(6)], extra)
    out_channels = [level.channels for level in levels] + list(SSDLITE_EXTRA_CHANNELS)
    anchors = DefaultBoxGenerator([[2, 3] for _ in out_channels], min_ratio=0.2, max_ratio=0.95)
    head = SSDLiteHead(out_channels, anchors.num_anchors_per_location(), num_classes, norm_layer)
    mean, std = _mean_std(extractor)
    return SSD(
        body,
        anchors,
        (size, size),
        num_classes,
        image_mean=mean,
        image_std=std,
        head=head,
        score_thresh=0.001,
        nms_thresh=0.55,
        detections_per_img=300,
        topk_candidates=300,
    )


class LevelsWithFPN(nn.Module):
    """Backbone levels followed by torchvision's ``FeaturePyramidNetwork`` (with P6/P7)."""

    def __init__(self, body: NamedLevels, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(
            list(in_channels), out_channels, extra_blocks=LastLevelP6P7(out_channels, out_channels)
        )
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.fpn(self.body(x))


def build_retinanet(
    backbone: str, num_classes: int, *, weights: str | Path | None = None, size: int = 384
) -> RetinaNet:
    """RetinaNet with an FPN (P3–P7) on the stride 8/16/32 levels of ``backbone``."""
    extractor, levels = create_extractor(backbone, (8, 16, 32), weights)
    body = LevelsWithFPN(
        NamedLevels(extractor, ["p3", "p4", "p5"]), [lv.channels for lv in levels], FPN_CHANNELS
    )
    anchors = _default_anchorgen()
    head = RetinaNetHead(FPN_CHANNELS, anchors.num_anchors_per_location()[0], num_classes)
    mean, std = _mean_std(extractor)
    return RetinaNet(
        body,
        num_classes,
        min_size=size,
        max_size=size,
        image_mean=mean,
        image_std=std,
        anchor_generator=anchors,
        head=head,
        fixed_size=(size, size),
    )
