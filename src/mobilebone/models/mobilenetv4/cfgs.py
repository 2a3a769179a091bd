"""MobileNetV4 in the registry: metadata, eval config and timm's weight tags (torch-free; the network is
in ``model.py``).

All weights were trained by timm and are published as ``timm/<arch>.<tag>``; each tag's values are timm's
``pretrained_cfg`` (timm ``mobilenetv3.py`` default_cfgs, Apache-2.0). Tags encode the training:
``eNNN`` epochs, ``rRRR`` train resolution, ``in12k`` ImageNet-12k (11,821 classes), ``_ft_in1k``
fine-tuned on ImageNet-1k, ``ix`` Xavier-uniform init of the attention projections. Top-1 is timm's
ImageNet-1k evaluation at the tag's input size (timm ``results/results-imagenet.csv``), given for the
tags whose figure is known here. The first tag of a model is its default.
"""

from __future__ import annotations

from typing import Any

from mobilebone.models.mobilenetv4.specs import SPECS, MobileNetV4Spec, MQASpec
from mobilebone.registry import (
    INCEPTION_MEAN,
    INCEPTION_STD,
    Kind,
    ModelEntry,
    PretrainedTag,
    default_cfg,
    register,
)

PAPER = "arXiv:2404.10518"  # Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem"
IN12K_CLASSES = 11821  # the ImageNet-12k subset's classifier width
_CONVERTERS = {"timm": "mobilebone.checkpoints.formats.timm:mobilenetv4_to_mobilebone"}


def _tag(
    variant: str, tag: str, size: int, crop: float, test: int | None, test_crop: float = 1.0, **kw: Any
) -> PretrainedTag:
    return PretrainedTag(
        f"mobilenetv4_{variant}",
        tag,
        size,
        crop,
        test_input_size=test,
        test_crop_pct=test_crop if test else None,
        paper_ids=PAPER,
        **kw,
    )


_TAGS: dict[str, tuple[PretrainedTag, ...]] = {
    "conv_small": (
        _tag("conv_small", "e2400_r224_in1k", 224, 0.875, 256, 0.95, top1=73.756),
        _tag("conv_small", "e1200_r224_in1k", 224, 0.875, 256, 0.95),
        _tag("conv_small", "e3600_r256_in1k", 256, 0.95, 320, mean=INCEPTION_MEAN, std=INCEPTION_STD),
    ),
    "conv_medium": (
        _tag("conv_medium", "e500_r256_in1k", 256, 0.95, 320, top1=79.916),
        _tag("conv_medium", "e500_r224_in1k", 224, 0.95, 256),
        _tag("conv_medium", "e250_r384_in12k_ft_in1k", 384, 0.95, None),
        _tag("conv_medium", "e180_r384_in12k", 384, 1.0, None, num_classes=IN12K_CLASSES),
        _tag("conv_medium", "e180_ad_r384_in12k", 384, 1.0, None, num_classes=IN12K_CLASSES),
        _tag("conv_medium", "e250_r384_in12k", 384, 1.0, None, num_classes=IN12K_CLASSES),
    ),
    "conv_large": (
        _tag("conv_large", "e600_r384_in1k", 384, 0.95, 448, top1=82.974),
        _tag("conv_large", "e500_r256_in1k", 256, 0.95, 320),
    ),
    "hybrid_medium": (
        _tag("hybrid_medium", "e200_r256_in12k_ft_in1k", 256, 0.95, 320),
        _tag("hybrid_medium", "ix_e550_r256_in1k", 256, 0.95, 320, top1=81.478),
        _tag("hybrid_medium", "ix_e550_r384_in1k", 384, 0.95, 448),
        _tag("hybrid_medium", "e500_r224_in1k", 224, 0.95, 256),
        _tag("hybrid_medium", "e200_r256_in12k", 256, 0.95, 320, num_classes=IN12K_CLASSES),
    ),
    "hybrid_large": (
        _tag("hybrid_large", "ix_e600_r384_in1k", 384, 0.95, 448, top1=83.996),
        _tag("hybrid_large", "e600_r384_in1k", 384, 0.95, 448),
    ),
}


def _kind(spec: MobileNetV4Spec) -> Kind:
    """``hybrid`` when any block is Mobile-MQA attention, else ``convnet``."""
    return "hybrid" if any(isinstance(b, MQASpec) for stage in spec.stages for b in stage) else "convnet"


for _variant, _spec in SPECS.items():
    register(
        ModelEntry(
            name=f"mobilenetv4_{_variant}",
            family="mobilenetv4",
            kind=_kind(_spec),
            recipe="mobilenetv4",
            builder="mobilebone.models.mobilenetv4.model:build",
            variant=_variant,
            converters=_CONVERTERS,
            # timm's eval config of the default tags: paper resolution, bicubic, crop 0.95, ImageNet mean/std.
            default_cfg=default_cfg(
                _spec.input_size, crop_pct=0.95, interpolation="bicubic", paper_ids=PAPER
            ),
            tags=_TAGS.get(_variant, ()),
        )
    )
