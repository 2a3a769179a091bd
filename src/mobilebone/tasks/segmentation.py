"""Segmenters on a mobilebone backbone, assembled from torchvision's segmentation components.

* DeepLabV3 (Chen et al. 2017, "Rethinking Atrous Convolution"; torchvision's ``DeepLabV3`` /
  ``DeepLabHead`` / ``FCNHead`` in ``torchvision/models/segmentation/deeplabv3.py``). torchvision dilates the
  last MobileNetV3 stage to keep output stride 16; mobilebone backbones have no dilated mode (their heads
  use only the declared levels), so ASPP runs on the stride-32 level at output stride 32, with the atrous
  rates halved to (6, 12, 18) so they cover the same image area as (12, 24, 36) at stride 16. The optional
  auxiliary ``FCNHead`` reads the stride-16 level.
* LR-ASPP (MobileNetV3 paper, Howard et al. 2019, §6.3; torchvision's ``LRASPP``): low = stride-8 level,
  high = stride-32 level (torchvision: stride 16, dilated), 128 intermediate channels.

Both take images scaled to [0, 1] (the backbone's mean / std is applied inside, as in the detectors) and
return ``{"out": logits}`` (plus ``"aux"``) at the input's resolution, as torchvision's do.
"""

from __future__ import annotations

from pathlib import Path

from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3
from torchvision.models.segmentation.fcn import FCNHead
from torchvision.models.segmentation.lraspp import LRASPP

from mobilebone.tasks.backbone import NamedLevels, create_extractor

ASPP_RATES = (6, 12, 18)  # (12, 24, 36) at output stride 16, halved for output stride 32
LRASPP_INTER_CHANNELS = 128


def build_deeplabv3(
    backbone: str, num_classes: int, *, weights: str | Path | None = None, aux_loss: bool = False
) -> DeepLabV3:
    """DeepLabV3 (ASPP) on the stride-32 level of ``backbone``; ``aux_loss`` adds an FCN head at stride 16."""
    extractor, levels = create_extractor(backbone, (16, 32), weights)
    body = NamedLevels(extractor, ["aux", "out"], normalize=True)
    classifier = DeepLabHead(levels[1].channels, num_classes, atrous_rates=ASPP_RATES)
    aux = FCNHead(levels[0].channels, num_classes) if aux_loss else None
    return DeepLabV3(body, classifier, aux)


def build_lraspp(backbone: str, num_classes: int, *, weights: str | Path | None = None) -> LRASPP:
    """LR-ASPP with the stride-8 level as ``low`` and the stride-32 level as ``high``."""
    extractor, levels = create_extractor(backbone, (8, 32), weights)
    body = NamedLevels(extractor, ["low", "high"], normalize=True)
    return LRASPP(body, levels[0].channels, levels[1].channels, num_classes, LRASPP_INTER_CHANNELS)
