"""The dataset layouts ``mobilebone train / eval --task`` read from ``--data``: one typed table.

Importing it loads no torch (``train --help`` lists the layouts); the readers are imported on use.

Each layout names its task, the folder structure it expects (the help text and the error when it is
missing) and how it opens the train and held-out splits. Images come untransformed: the training task
applies its (seeded) transforms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mobilebone.tasks.data.errors import TaskDataError

Split = Literal["train", "val"]


@dataclass(frozen=True)
class DataLayout:
    """One dataset layout: ``open(root, split)`` checks the structure (one-line ``TaskDataError``) and reads
    that split, returning ``(dataset, class names)`` (index = label; 0 = background)."""

    name: str
    task: Literal["detection", "segmentation"]
    expects: str  # the folder structure, as the help text and errors show it
    open: Callable[[Path, Split], tuple[Any, list[str]]]
    required: tuple[str, ...]  # glob patterns under the root that must match (checked before a run starts)

    def check(self, root: Path) -> None:
        """A one-line ``TaskDataError`` naming the first missing part of the layout."""
        if not root.is_dir():
            raise TaskDataError(f"--data {root}: no such directory; expected {self.expects}")
        for pattern in self.required:
            if not any(root.glob(pattern)):
                raise TaskDataError(
                    f"--data {root}: missing {pattern}; the {self.name} layout is {self.expects}"
                )


def _one(root: Path, pattern: str, expects: str) -> Path:
    found = sorted(root.glob(pattern))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
        raise TaskDataError(f"--data {root}: {what} match for {pattern}; expected {expects}")
    return found[0]


COCO_EXPECTS = "ROOT/annotations/instances_{train,val}NAME.json with images in ROOT/{train,val}NAME/"


def _coco(root: Path, split: Split) -> tuple[Any, list[str]]:
    from mobilebone.tasks.data.coco import coco_detection, with_empty_boxes

    annotations = _one(root, f"annotations/instances_{split}*.json", COCO_EXPECTS)
    images = root / annotations.stem.removeprefix("instances_")
    if not images.is_dir():
        raise TaskDataError(f"--data {root}: no image folder {images.name}/ for {annotations.name}")
    dataset = coco_detection(images, annotations)
    names = {int(c["id"]): str(c["name"]) for c in dataset.coco.dataset["categories"]}
    classes = ["background"] + [names.get(i, f"unused_{i}") for i in range(1, dataset.num_classes)]
    return with_empty_boxes(dataset), classes


VOC_CLASSES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]


def _voc(augmented: bool) -> Callable[[Path, Split], tuple[Any, list[str]]]:
    def open_voc(root: Path, split: Split) -> tuple[Any, list[str]]:
        from mobilebone.tasks.data.segmentation_folders import voc_segmentation

        if not (root / "JPEGImages").is_dir():
            raise TaskDataError(f"--data {root}: no JPEGImages/; expected the VOC2012 folder")
        name = "train_aug" if augmented and split == "train" else split
        return voc_segmentation(root, name, augmented=augmented), list(VOC_CLASSES)

    return open_voc


def _ade20k(root: Path, split: Split) -> tuple[Any, list[str]]:
    from mobilebone.tasks.data.segmentation_folders import ADE20K_NUM_CLASSES, ade20k

    dataset = ade20k(root, "training" if split == "train" else "validation")
    return dataset, [f"class_{i + 1}" for i in range(ADE20K_NUM_CLASSES)]


def _voc_required(masks: str, train: str) -> tuple[str, ...]:
    lists = "ImageSets/Segmentation"
    return ("JPEGImages", masks, f"{lists}/{train}.txt", f"{lists}/val.txt")


def _layouts() -> dict[str, DataLayout]:
    layouts = (
        DataLayout(
            "coco",
            "detection",
            COCO_EXPECTS,
            _coco,
            ("annotations/instances_train*.json", "annotations/instances_val*.json"),
        ),
        DataLayout(
            "voc",
            "segmentation",
            "VOC2012/ with JPEGImages/, SegmentationClass/, ImageSets/Segmentation/{train,val}.txt",
            _voc(augmented=False),
            _voc_required("SegmentationClass", "train"),
        ),
        DataLayout(
            "voc_sbd",
            "segmentation",
            "VOC2012/ with JPEGImages/, SegmentationClassAug/ (SBD), ImageSets/Segmentation/"
            "{train_aug,val}.txt",
            _voc(augmented=True),
            _voc_required("SegmentationClassAug", "train_aug"),
        ),
        DataLayout(
            "ade20k",
            "segmentation",
            "ADEChallengeData2016/ with images/{training,validation}/*.jpg and annotations/.../*.png",
            _ade20k,
            tuple(
                f"{kind}/{split}"
                for kind in ("images", "annotations")
                for split in ("training", "validation")
            ),
        ),
    )
    return {layout.name: layout for layout in layouts}


LAYOUTS: dict[str, DataLayout] = _layouts()
DEFAULT_LAYOUT = {"detection": "coco", "segmentation": "voc"}


def get_layout(name: str | None, task: str) -> DataLayout:
    """The layout ``name`` (None: the task's default); one of another task is a ``TaskDataError``."""
    name = name or DEFAULT_LAYOUT[task]
    layout = LAYOUTS.get(name)
    if layout is None or layout.task != task:
        fits = ", ".join(n for n, lay in LAYOUTS.items() if lay.task == task)
        raise TaskDataError(f"--data-layout {name} is not a {task} layout; choose from {fits}")
    return layout


def open_layout(root: str | Path, name: str | None, task: str, split: Split) -> tuple[Any, list[str]]:
    """Check ``root`` and open its ``split`` as layout ``name`` for ``task``: ``(dataset, class names)``."""
    layout = get_layout(name, task)
    path = Path(root).expanduser()
    layout.check(path)
    return layout.open(path, split)
