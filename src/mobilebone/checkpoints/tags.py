"""Pretrained weight tags (``arch.tag``, as timm names them) and the eval preprocessing of each.

All weights live on the Hugging Face Hub as ``timm/<arch>.<tag>`` / ``model.safetensors`` in timm's key
layout (MobileOne: Apple's weights renamed by timm; MobileNetV4: trained by timm, REFERENCE §2.6).
Values are timm's ``pretrained_cfg`` of each tag; the test-suite compares them with timm's own table.
The first tag listed for an architecture is its default (``create_model(arch, pretrained=True)``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from mobilebone.registry import IMAGENET_MEAN, IMAGENET_STD, get_entry

INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
HUB_FILENAME = "model.safetensors"


@dataclass(frozen=True)
class PretrainedTag:
    """One set of published weights: where it lives and how its inputs must be preprocessed."""

    arch: str
    tag: str
    input_size: int
    crop_pct: float
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_classes: int = 1000
    test_input_size: int | None = None  # a larger size timm also evaluates at (with test_crop_pct)
    test_crop_pct: float | None = None

    @property
    def name(self) -> str:
        """``arch.tag``."""
        return f"{self.arch}.{self.tag}"

    @property
    def hf_hub_id(self) -> str:
        """The Hugging Face Hub repository holding the weights."""
        return f"timm/{self.name}"

    def cfg(self) -> dict[str, Any]:
        """The ``pretrained_cfg`` a model gets when loaded with these weights (timm's keys)."""
        cfg: dict[str, Any] = {
            "architecture": self.arch,
            "tag": self.tag,
            "input_size": (3, self.input_size, self.input_size),
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
            "mean": self.mean,
            "std": self.std,
            "num_classes": self.num_classes,
            "hf_hub_id": self.hf_hub_id,
            "hf_hub_filename": HUB_FILENAME,
        }
        if self.test_input_size is not None:
            cfg["test_input_size"] = (3, self.test_input_size, self.test_input_size)
            cfg["test_crop_pct"] = self.test_crop_pct
        return cfg


def _mnv4(
    arch: str, tag: str, size: int, crop: float, test: int | None, test_crop: float | None = 1.0, **kw: Any
) -> PretrainedTag:
    return PretrainedTag(
        f"mobilenetv4_{arch}",
        tag,
        size,
        crop,
        test_input_size=test,
        test_crop_pct=test_crop if test else None,
        **kw,
    )


_IN12K = 11821  # ImageNet-12k classifier width (REFERENCE §2.6)

_TAGS: tuple[PretrainedTag, ...] = (
    # MobileOne: Apple's ImageNet-1k weights; timm evaluates S0 at crop 0.875, S1–S4 at 0.9 (REFERENCE §1.5).
    *(
        PretrainedTag(f"mobileone_s{i}", "apple_in1k", 224, 0.875 if i == 0 else 0.9, "bilinear")
        for i in range(5)
    ),
    # MobileNetV4 (REFERENCE §2.6; timm ``mobilenetv3.py`` default_cfgs).
    _mnv4("conv_small", "e2400_r224_in1k", 224, 0.875, 256, 0.95),
    _mnv4("conv_small", "e1200_r224_in1k", 224, 0.875, 256, 0.95),
    _mnv4("conv_small", "e3600_r256_in1k", 256, 0.95, 320, mean=INCEPTION_MEAN, std=INCEPTION_STD),
    _mnv4("conv_medium", "e500_r256_in1k", 256, 0.95, 320),
    _mnv4("conv_medium", "e500_r224_in1k", 224, 0.95, 256),
    _mnv4("conv_medium", "e250_r384_in12k_ft_in1k", 384, 0.95, None),
    _mnv4("conv_medium", "e180_r384_in12k", 384, 1.0, None, num_classes=_IN12K),
    _mnv4("conv_medium", "e180_ad_r384_in12k", 384, 1.0, None, num_classes=_IN12K),
    _mnv4("conv_medium", "e250_r384_in12k", 384, 1.0, None, num_classes=_IN12K),
    _mnv4("conv_large", "e600_r384_in1k", 384, 0.95, 448),
    _mnv4("conv_large", "e500_r256_in1k", 256, 0.95, 320),
    _mnv4("hybrid_medium", "e200_r256_in12k_ft_in1k", 256, 0.95, 320),
    _mnv4("hybrid_medium", "ix_e550_r256_in1k", 256, 0.95, 320),
    _mnv4("hybrid_medium", "ix_e550_r384_in1k", 384, 0.95, 448),
    _mnv4("hybrid_medium", "e500_r224_in1k", 224, 0.95, 256),
    _mnv4("hybrid_medium", "e200_r256_in12k", 256, 0.95, 320, num_classes=_IN12K),
    _mnv4("hybrid_large", "ix_e600_r384_in1k", 384, 0.95, 448),
    _mnv4("hybrid_large", "e600_r384_in1k", 384, 0.95, 448),
)
TAGS: dict[str, PretrainedTag] = {t.name: t for t in _TAGS}


def _registered(tag: PretrainedTag) -> bool:
    try:
        get_entry(tag.arch)
    except ValueError:
        return False
    return True


def list_pretrained(pattern: str = "*") -> list[str]:
    """``arch.tag`` names of every weight set whose full name or architecture matches ``pattern``."""
    return sorted(
        t.name
        for t in _TAGS
        if _registered(t) and (fnmatch.fnmatch(t.name, pattern) or fnmatch.fnmatch(t.arch, pattern))
    )


def default_tag(arch: str) -> PretrainedTag:
    """The default weights of an architecture (the first tag listed for it)."""
    for tag in _TAGS:
        if tag.arch == arch:
            return tag
    raise ValueError(f"no pretrained weights are known for {arch!r}; run `mobilebone list --pretrained`")


def get_tag(name: str, arch: str | None = None) -> PretrainedTag:
    """Look up ``arch.tag`` (or a bare ``tag`` of ``arch``); an unknown name raises listing the known ones."""
    full = name if "." in name else f"{arch}.{name}"
    if full in TAGS:
        return TAGS[full]
    model = full.split(".", 1)[0]
    known = [t.name for t in _TAGS if t.arch == model] or list_pretrained()
    raise ValueError(f"unknown weight tag {name!r}; known tags: {', '.join(known)}")


def is_tag(name: str, arch: str | None = None) -> bool:
    """True when ``name`` names known weights (``arch.tag``, or a bare tag of ``arch``)."""
    return (name if "." in name else f"{arch}.{name}") in TAGS


def tag_cfg(name: str) -> dict[str, Any]:
    """The ``pretrained_cfg`` of ``arch.tag`` weights, ``{}`` for a bare architecture name."""
    return get_tag(name).cfg() if "." in name else {}
