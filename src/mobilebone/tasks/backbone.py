"""The one place the task heads meet a backbone: ``features_only`` extractors and their declared levels.

Heads never look inside a backbone; they ask for feature levels by stride and read each level's channel
count from ``feature_info``. ``level_specs`` is the single adapter over ``feature_info``'s shape, so a change
of that object (e.g. to timm's ``FeatureInfo`` with ``channels()`` / ``reduction()``) touches only it.
"""

from __future__ import annotations

import functools
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from mobilebone.registry import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class Level:
    """One feature level a head consumes: channel count and total stride with respect to the input."""

    channels: int
    stride: int


def level_specs(feature_info: object) -> list[Level]:
    """Channels and stride of every level a ``features_only`` model declares, in output order."""
    channels = getattr(feature_info, "channels", None)
    reduction = getattr(feature_info, "reduction", None)
    if callable(channels) and callable(reduction):  # timm-style FeatureInfo object
        return [Level(int(c), int(r)) for c, r in zip(channels(), reduction(), strict=True)]
    return [Level(int(info.num_chs), int(info.reduction)) for info in feature_info]  # type: ignore[attr-defined]


@functools.cache
def backbone_levels(backbone: str) -> tuple[Level, ...]:
    """Every feature level ``backbone`` declares (built once per name, then cached)."""
    import torch

    from mobilebone import create_model

    # The probe's random init must not consume the global RNG: else a task model's initial weights would
    # depend on whether this cache was warm (a seeded run would not repeat within one process).
    with torch.random.fork_rng(devices=[]):
        return tuple(level_specs(create_model(backbone, features_only=True).feature_info))


def create_extractor(
    backbone: str, strides: Sequence[int], weights: str | Path | None = None, *, output_stride: int = 32
) -> tuple[nn.Module, list[Level]]:
    """A ``features_only`` backbone returning the levels of ``strides`` (one per stride), and their specs.

    ``strides`` name levels by their stride in the undilated (output stride 32) network; with
    ``output_stride=16`` the stride-32 level comes out at stride 16 (dilated last stage), and the returned
    specs give the actual strides. ``weights``, a classification checkpoint (file or weight tag),
    initializes the backbone strictly; its classifier is dropped (the task head is new).
    """
    from mobilebone import create_model

    all_levels = backbone_levels(backbone)
    by_stride = {level.stride: i for i, level in enumerate(all_levels)}  # last level wins per stride
    missing = [s for s in strides if s not in by_stride]
    if missing:
        have = sorted(by_stride)
        raise ValueError(f"{backbone} has no feature level of stride {missing}; its strides are {have}")
    indices = [by_stride[s] for s in strides]
    with warnings.catch_warnings():
        # A checkpoint trained for another class count keeps its backbone; the classifier is dropped anyway.
        warnings.filterwarnings("ignore", message="the classifier of")
        extractor = create_model(
            backbone,
            features_only=True,
            out_indices=indices,
            pretrained=str(weights) if weights else False,
            output_stride=output_stride,
        )
    return extractor, level_specs(extractor.feature_info)


class NamedLevels(nn.Module):
    """Wrap a ``features_only`` extractor so it returns ``OrderedDict(name → map)``, as torchvision heads want.

    ``extra`` blocks (e.g. SSDLite's stride-2 blocks) are chained after the last level and appended.
    ``normalize`` standardizes the input with the backbone's mean / std first, so the model takes images
    scaled to [0, 1] (torchvision's detectors do this in their transform; its segmenters do not).
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        extractor: nn.Module,
        names: Sequence[str],
        extra: nn.ModuleList | None = None,
        out_channels: int | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.body = extractor
        self.normalize = normalize
        cfg = getattr(extractor, "pretrained_cfg", {}) or {}
        self.register_buffer("mean", torch.tensor(cfg.get("mean", IMAGENET_MEAN)).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(cfg.get("std", IMAGENET_STD)).reshape(1, -1, 1, 1))
        self.names = list(names)
        self.extra = extra if extra is not None else nn.ModuleList()
        if out_channels is not None:
            self.out_channels = out_channels  # read by torchvision's RetinaNet / FPN wrappers

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if self.normalize:
            x = (x - self.mean) / self.std
        maps = list(self.body(x))
        for block in self.extra:
            maps.append(block(maps[-1]))
        return OrderedDict(zip(self.names, maps, strict=True))
