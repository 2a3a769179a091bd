"""Segmenters on a mobilebone backbone, assembled from torchvision's segmentation components.

* DeepLabV3 (Chen et al. 2017, "Rethinking Atrous Convolution"; torchvision's ``DeepLabV3`` /
  ``DeepLabHead`` / ``FCNHead`` in ``torchvision/models/segmentation/deeplabv3.py``). As torchvision does for
  MobileNetV3, the backbone's last stage is dilated (``output_stride=16``, the default) and ASPP uses atrous
  rates (12, 24, 36) (DeepLabV3 §4.1 at output stride 16). ``output_stride=32`` keeps the undilated
  backbone with the rates halved to (6, 12, 18), which cover the same image area. The optional auxiliary
  ``FCNHead`` reads the last level of the stride-16 stage.
* LR-ASPP (MobileNetV3 paper, Howard et al. 2019, §6.3; torchvision's ``LRASPP``): low = stride-8 level,
  high = the last level (stride 16 with the dilated last stage, as torchvision; 32 with
  ``output_stride=32``), 128 intermediate channels.

Both take images scaled to [0, 1] (the backbone's mean / std is applied inside, as in the detectors) and
return ``{"out": logits}`` (plus ``"aux"``) at the input's resolution, as torchvision's do.
"""

from __future__ import annotations

from pathlib import Path

from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3
from torchvision.models.segmentation.fcn import FCNHead
from torchvision.models.segmentation.lraspp import LRASPP

from mobilebone.tasks.backbone import NamedLevels, create_extractor

# Atrous rates per output stride: DeepLabV3's (12, 24, 36) at 16, halved at 32 (same image area).
ASPP_RATES: dict[int, tuple[int, int, int]] = {16: (12, 24, 36), 32: (6, 12, 18)}
DEFAULT_OUTPUT_STRIDE = 16  # torchvision's segmentation MobileNetV3 (``dilated=True``)
LRASPP_INTER_CHANNELS = 128


def build_deeplabv3(
    backbone: str,
    num_classes: int,
    *,
    weights: str | Path | None = None,
    aux_loss: bool = False,
    output_stride: int = DEFAULT_OUTPUT_STRIDE,
) -> DeepLabV3:
    """DeepLabV3 (ASPP) on the last level of ``backbone``; ``aux_loss`` adds an FCN head on the stride-16 stage."""
    extractor, levels = create_extractor(backbone, (16, 32), weights, output_stride=output_stride)
    body = NamedLevels(extractor, ["aux", "out"], normalize=True)
    classifier = DeepLabHead(levels[1].channels, num_classes, atrous_rates=ASPP_RATES[output_stride])
    aux = FCNHead(levels[0].channels, num_classes) if aux_loss else None
    return DeepLabV3(body, classifier, aux)


def build_lraspp(
    backbone: str,
    num_classes: int,
    *,
    weights: str | Path | None = None,
    output_stride: int = DEFAULT_OUTPUT_STRIDE,
) -> LRASPP:
    """LR-ASPP with the stride-8 level as ``low`` and the last level (stride ``output_stride``) as ``high``."""
    extractor, levels = create_extractor(backbone, (8, 32), weights, output_stride=output_stride)
    body = NamedLevels(extractor, ["low", "high"], normalize=True)
    return LRASPP(body, levels[0].channels, levels[1].channels, num_classes, LRASPP_INTER_CHANNELS)
