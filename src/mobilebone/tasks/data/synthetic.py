"""An embedded detection / segmentation set: coloured shapes on textured backgrounds, made on the fly.

Every sample is a pure function of ``(seed, split, index)``, so the set needs no download and the train and
held-out splits never share an image. Each image carries boxes, labels, instance masks and a semantic mask
(0 = background, ``1..len(CLASSES)`` = the shape classes); shapes drawn later occlude earlier ones, and the
boxes and instance masks describe only the visible part.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors

CLASSES = ("circle", "square", "triangle", "ring")
Split = Literal["train", "val"]
_SPLIT_OFFSET = {"train": 0, "val": 1_000_003}  # disjoint per-image seeds
MIN_VISIBLE_PIXELS = 24  # a shape occluded below this is dropped from the targets


def _texture(gen: torch.Generator, size: int) -> Tensor:
    """A smooth random colour field plus faint stripes: (3, size, size) in [0, 1]."""
    coarse = torch.rand(3, 1, 4, 4, generator=gen)
    field = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[
        :, 0
    ]
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    angle = float(torch.rand((), generator=gen)) * math.pi
    period = 4.0 + 12.0 * float(torch.rand((), generator=gen))
    stripes = torch.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    return (0.6 * field + 0.15 * stripes + 0.2).clamp(0, 1)


def _shape_mask(kind: int, gen: torch.Generator, size: int) -> Tensor:
    """A boolean (size, size) mask of one shape of class ``kind`` (0-based) at a random place and scale."""
    radius = size * (0.08 + 0.14 * float(torch.rand((), generator=gen)))
    cy, cx = (radius + (size - 2 * radius) * torch.rand(2, generator=gen)).tolist()
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    dy, dx = yy - cy, xx - cx
    name = CLASSES[kind]
    if name == "circle":
        return dy**2 + dx**2 <= radius**2
    if name == "square":
        return (dy.abs() <= radius * 0.85) & (dx.abs() <= radius * 0.85)
    if name == "triangle":  # upward triangle: inside three half-planes
        top = dy >= -radius
        return top & (dy <= radius) & (dx.abs() <= (dy + radius) * 0.6)
    dist = (dy**2 + dx**2).sqrt()
    return (dist <= radius) & (dist >= radius * 0.55)


def make_sample(
    seed: int, split: Split, index: int, size: int = 160, max_objects: int = 4
) -> dict[str, Tensor]:
    """One sample as plain tensors: ``image`` (3,H,W) float, ``boxes`` (N,4) XYXY, ``labels`` (N,),
    ``masks`` (N,H,W) bool and ``semantic`` (H,W) int64."""
    gen = torch.Generator().manual_seed(seed * 2_000_003 + _SPLIT_OFFSET[split] + index)
    image = _texture(gen, size)
    semantic = torch.zeros(size, size, dtype=torch.int64)
    instance = torch.full((size, size), -1, dtype=torch.int64)
    count = 1 + int(torch.randint(max_objects, (1,), generator=gen))
    kinds = torch.randint(len(CLASSES), (count,), generator=gen).tolist()
    for obj, kind in enumerate(kinds):
        mask = _shape_mask(kind, gen, size)
        colour = torch.rand(3, 1, generator=gen)
        shade = 0.85 + 0.15 * torch.rand(size, size, generator=gen)  # mild per-pixel noise on the shape
        image[:, mask] = (colour * shade[mask]).clamp(0, 1)
        semantic[mask] = kind + 1
        instance[mask] = obj
    boxes, labels, masks = [], [], []
    for obj, kind in enumerate(kinds):
        visible = instance == obj
        if int(visible.sum()) < MIN_VISIBLE_PIXELS:
            continue
        ys, xs = torch.nonzero(visible, as_tuple=True)
        boxes.append([float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1])
        labels.append(kind + 1)
        masks.append(visible)
    return {
        "image": image,
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "masks": torch.stack(masks) if masks else torch.zeros(0, size, size, dtype=torch.bool),
        "semantic": semantic,
    }


class SyntheticShapes(Dataset):
    """The embedded shapes set: ``(image, target)`` pairs as torchvision ``tv_tensors``.

    ``target`` holds ``boxes`` (``BoundingBoxes``, XYXY), ``labels``, ``masks`` (instance ``Mask``) and
    ``semantic`` (``Mask``), so ``torchvision.transforms.v2`` moves them all with the image.
    """

    classes = ("background", *CLASSES)

    def __init__(
        self,
        split: Split = "train",
        *,
        length: int = 512,
        size: int = 160,
        seed: int = 0,
        transforms: Callable[..., Any] | None = None,
    ) -> None:
        if split not in _SPLIT_OFFSET:
            raise ValueError(f"unknown split {split!r}; choose 'train' or 'val'")
        self.split, self.length, self.size, self.seed, self.transforms = split, length, size, seed, transforms

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        raw = make_sample(self.seed, self.split, index, self.size)
        size = (self.size, self.size)
        image = tv_tensors.Image(raw["image"])
        target = {
            "boxes": tv_tensors.BoundingBoxes(raw["boxes"], format="XYXY", canvas_size=size),
            "labels": raw["labels"],
            "masks": tv_tensors.Mask(raw["masks"]),
            "semantic": tv_tensors.Mask(raw["semantic"]),
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
