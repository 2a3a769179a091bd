"""Image / label-mask pairs on disk: Pascal VOC (plain and SBD-augmented) and ADE20k layouts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from mobilebone.tasks.data.errors import TaskDataError, load_label_mask, load_rgb
from mobilebone.tasks.metrics import IGNORE_INDEX


class SegmentationFolder(Dataset):
    """``(image, {"semantic": Mask})`` pairs listed by ``ids``; ``label_map`` rewrites raw mask values."""

    def __init__(
        self,
        images: Sequence[Path],
        masks: Sequence[Path],
        num_classes: int,
        *,
        label_map: Callable[[np.ndarray], np.ndarray] | None = None,
        transforms: Callable[..., Any] | None = None,
    ) -> None:
        if not images:
            raise TaskDataError("the dataset lists no images")
        self.images, self.masks = list(images), list(masks)
        self.num_classes, self.label_map, self.transforms = num_classes, label_map, transforms

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        image = load_rgb(self.images[index])
        labels = load_label_mask(self.masks[index], image.size)
        if self.label_map is not None:
            labels = self.label_map(labels)
        bad = (labels >= self.num_classes) & (labels != IGNORE_INDEX)
        if bad.any():
            raise TaskDataError(
                f"{self.masks[index]}: label {int(labels[bad].max())} is outside 0..{self.num_classes - 1} "
                f"(and {IGNORE_INDEX} = ignore)"
            )
        sample = (F.to_image(image), {"semantic": tv_tensors.Mask(torch.from_numpy(labels))})
        return self.transforms(*sample) if self.transforms is not None else sample


def _ids(list_file: Path) -> list[str]:
    if not list_file.is_file():
        raise TaskDataError(f"{list_file}: split list not found")
    return [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]


VOC_NUM_CLASSES = 21  # background + 20 object classes; 255 marks object borders (ignored)


def voc_segmentation(
    root: str | Path,
    split: str = "train",
    *,
    augmented: bool = False,
    transforms: Callable[..., Any] | None = None,
) -> SegmentationFolder:
    """Pascal VOC 2012 segmentation under ``root`` (the ``VOC2012`` folder).

    Plain layout: ``JPEGImages/``, ``SegmentationClass/`` and ``ImageSets/Segmentation/{split}.txt``.
    SBD-augmented layout (``augmented=True``; Hariharan et al. 2011, as used by DeepLab): masks in
    ``SegmentationClassAug/`` and the list ``ImageSets/Segmentation/{split}.txt`` (e.g. ``train_aug``).
    """
    root = Path(root)
    mask_dir = root / ("SegmentationClassAug" if augmented else "SegmentationClass")
    ids = _ids(root / "ImageSets" / "Segmentation" / f"{split}.txt")
    images = [root / "JPEGImages" / f"{i}.jpg" for i in ids]
    masks = [mask_dir / f"{i}.png" for i in ids]
    return SegmentationFolder(images, masks, VOC_NUM_CLASSES, transforms=transforms)


ADE20K_NUM_CLASSES = 150


def _ade_labels(raw: np.ndarray) -> np.ndarray:
    # ADE20k's 0 means "other" and is not scored: classes 1..150 become 0..149, 0 becomes ignore.
    out = raw - 1
    out[raw == 0] = IGNORE_INDEX
    return out


def ade20k(
    root: str | Path, split: str = "training", *, transforms: Callable[..., Any] | None = None
) -> SegmentationFolder:
    """ADE20k scene parsing (``ADEChallengeData2016``): ``images/{split}/*.jpg``, ``annotations/{split}/*.png``.

    150 classes, 0..149 after dropping the unscored label 0 (mapped to 255, ignored).
    """
    root = Path(root)
    if split not in ("training", "validation"):
        raise TaskDataError(f"unknown ADE20k split {split!r}; choose 'training' or 'validation'")
    images = sorted((root / "images" / split).glob("*.jpg"))
    if not images:
        raise TaskDataError(f"{root / 'images' / split}: no .jpg images (is this ADEChallengeData2016?)")
    masks = [root / "annotations" / split / f"{p.stem}.png" for p in images]
    return SegmentationFolder(images, masks, ADE20K_NUM_CLASSES, label_map=_ade_labels, transforms=transforms)
