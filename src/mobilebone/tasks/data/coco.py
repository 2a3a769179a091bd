"""COCO instances JSON through torchvision's ``CocoDetection`` (pycocotools), validated first.

pycocotools trusts the file and fails deep inside with a ``KeyError``; the checks here name the bad entry.
Labels are the file's own category ids (COCO's are 1..90 with gaps), so a detector for it is built with
``num_classes = max id + 1`` and label 0 stays the background.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2

from mobilebone.tasks.data.errors import TaskDataError, load_rgb

_REQUIRED = {
    "images": ("id", "file_name"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}


def check_coco_json(path: str | Path) -> dict[str, Any]:
    """Load and check a COCO instances file; any missing key, unknown id or bad box is a ``TaskDataError``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TaskDataError(f"{path}: no such annotation file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TaskDataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise TaskDataError(f"{path}: a COCO file is a JSON object with images, annotations and categories")
    for section, keys in _REQUIRED.items():
        entries = data.get(section)
        if not isinstance(entries, list):
            raise TaskDataError(f"{path}: missing the {section!r} list")
        for i, entry in enumerate(entries):
            missing = [k for k in keys if not isinstance(entry, dict) or k not in entry]
            if missing:
                raise TaskDataError(f"{path}: {section}[{i}] lacks {', '.join(missing)}")
    image_ids = {img["id"] for img in data["images"]}
    category_ids = {cat["id"] for cat in data["categories"]}
    for ann in data["annotations"]:
        where = f"{path}: annotation {ann['id']}"
        if ann["image_id"] not in image_ids:
            raise TaskDataError(f"{where} refers to unknown image id {ann['image_id']}")
        if ann["category_id"] not in category_ids:
            raise TaskDataError(f"{where} has unknown category id {ann['category_id']}")
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4):
            raise TaskDataError(f"{where}: bbox must be [x, y, width, height], got {box!r}")
        if box[2] < 0 or box[3] < 0:
            raise TaskDataError(f"{where}: bbox {box} has a negative width or height (x2 < x1 or y2 < y1)")
    return data


class _CheckedCoco(CocoDetection):
    """``CocoDetection`` whose images are opened with one clear error for a file that is not an image."""

    def _load_image(self, id: int) -> Image.Image:
        return load_rgb(Path(self.root) / self.coco.loadImgs(id)[0]["file_name"])


def coco_detection(
    images: str | Path, annotations: str | Path, *, transforms: Callable[..., Any] | None = None
) -> Any:
    """A checked COCO detection dataset yielding ``(Image, {"boxes": XYXY BoundingBoxes, "labels", ...})``."""
    data = check_coco_json(annotations)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its loading progress
        dataset = _CheckedCoco(str(images), str(annotations), transforms=transforms)
    wrapped = wrap_dataset_for_transforms_v2(dataset, target_keys=("boxes", "labels", "image_id"))
    wrapped.num_classes = max((cat["id"] for cat in data["categories"]), default=0) + 1
    return wrapped


class _BoxesAlways(Dataset[Any]):
    """Items whose image has no annotation still carry empty ``boxes`` / ``labels`` (batches need them)."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        image, target = self.base[index]
        if "boxes" not in target:
            canvas = (image.height, image.width)
            empty = tv_tensors.BoundingBoxes(torch.zeros(0, 4), format="XYXY", canvas_size=canvas)
            target = {**target, "boxes": empty, "labels": torch.zeros(0, dtype=torch.int64)}
        return image, target


def with_empty_boxes(dataset: Any) -> Dataset[Any]:
    """``dataset`` (from ``coco_detection``) with empty ``boxes`` / ``labels`` for unannotated images."""
    return _BoxesAlways(dataset)
