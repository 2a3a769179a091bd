"""Task transforms on ``torchvision.transforms.v2``: boxes and masks move with the image."""

from __future__ import annotations

import torch
from torchvision.transforms import v2


def detection_transforms(train: bool) -> v2.Transform:
    """Flip / photometric jitter for training, then float conversion and removal of degenerate boxes."""
    steps: list[v2.Transform] = [v2.ToImage()]
    if train:
        steps += [v2.RandomHorizontalFlip(), v2.RandomPhotometricDistort(p=0.5)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.SanitizeBoundingBoxes()]
    return v2.Compose(steps)


def segmentation_transforms(train: bool, size: int | None) -> v2.Transform:
    """Random scale-crop + flip for training, a resize for evaluation (none if ``size`` is None); masks use
    nearest sampling."""
    steps: list[v2.Transform] = [v2.ToImage()]
    if train:
        if size is None:
            raise ValueError("training transforms need a crop size")
        steps += [v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    elif size is not None:
        steps += [v2.Resize((size, size), antialias=True)]
    steps += [v2.ToDtype(torch.float32, scale=True)]
    return v2.Compose(steps)
