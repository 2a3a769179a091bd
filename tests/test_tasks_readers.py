"""COCO / Pascal VOC / ADE20k readers on tiny fake datasets, and their one-line errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobilebone.tasks.data.coco import coco_detection
from mobilebone.tasks.data.errors import TaskDataError
from mobilebone.tasks.data.segmentation_folders import ade20k, voc_segmentation


def _jpg(path: Path, size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(path)


def _png_mask(path: Path, values: np.ndarray, palette: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(values.astype(np.uint8), mode="L")
    if palette:
        image = image.convert("P")
    image.save(path)


def _coco(tmp_path: Path, **changes: object) -> tuple[Path, Path]:
    _jpg(tmp_path / "img" / "a.jpg")
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 3, "bbox": [5, 4, 10, 8], "area": 80, "iscrowd": 0}
        ],
        "categories": [{"id": 3, "name": "cat"}],
    }
    data.update(changes)  # type: ignore[arg-type]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    return tmp_path / "img", ann


def test_coco_reader_converts_boxes(tmp_path: Path) -> None:
    dataset = coco_detection(*_coco(tmp_path))
    image, target = dataset[0]
    assert isinstance(image, Image.Image) and image.size == (40, 30)
    assert target["boxes"].tolist() == [[5.0, 4.0, 15.0, 12.0]]  # xywh → xyxy
    assert target["labels"].tolist() == [3] and dataset.num_classes == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"categories": None}, "missing the 'categories' list"),
        ({"annotations": [{"id": 7, "image_id": 1, "bbox": [0, 0, 1, 1]}]}, "lacks category_id"),
        (
            {"annotations": [{"id": 7, "image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]}]},
            "unknown category id 9",
        ),
        (
            {"annotations": [{"id": 7, "image_id": 5, "category_id": 3, "bbox": [0, 0, 1, 1]}]},
            "unknown image id 5",
        ),
        ({"annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [9, 0, -4, 2]}]}, "x2 < x1"),
    ],
)
def test_coco_reader_rejects_bad_json(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(TaskDataError, match=message):
        coco_detection(*_coco(tmp_path, **changes))


def test_coco_reader_rejects_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    images, ann = _coco(tmp_path)
    (images / "a.jpg").write_text("not an image")
    with pytest.raises(TaskDataError, match=r"a\.jpg: not a readable image"):
        coco_detection(images, ann)[0]


def _voc(root: Path, augmented: bool, mask_size: tuple[int, int] = (40, 30)) -> None:
    _jpg(root / "JPEGImages" / "2007_000032.jpg")
    labels = np.zeros((mask_size[1], mask_size[0]), np.uint8)
    labels[5:10, 5:20] = 15
    labels[10, :] = 255  # VOC's object border: ignored
    folder = "SegmentationClassAug" if augmented else "SegmentationClass"
    _png_mask(root / folder / "2007_000032.png", labels, palette=not augmented)
    split = root / "ImageSets" / "Segmentation" / ("train_aug.txt" if augmented else "train.txt")
    split.parent.mkdir(parents=True, exist_ok=True)
    split.write_text("2007_000032\n")


@pytest.mark.parametrize("augmented", [False, True])
def test_voc_reader_plain_and_sbd_layouts(tmp_path: Path, augmented: bool) -> None:
    _voc(tmp_path, augmented)
    dataset = voc_segmentation(tmp_path, "train_aug" if augmented else "train", augmented=augmented)
    image, target = dataset[0]
    assert tuple(image.shape) == (3, 30, 40)
    assert sorted(target["semantic"].unique().tolist()) == [0, 15, 255]


def test_voc_reader_rejects_a_mask_of_another_size(tmp_path: Path) -> None:
    _voc(tmp_path, augmented=False, mask_size=(41, 30))
    with pytest.raises(TaskDataError, match="mask is 41x30 but its image is 40x30"):
        voc_segmentation(tmp_path, "train")[0]


def test_ade20k_reader_drops_the_unscored_label(tmp_path: Path) -> None:
    _jpg(tmp_path / "images" / "validation" / "ADE_val_00000001.jpg")
    labels = np.zeros((30, 40), np.uint8)
    labels[:, 20:] = 150
    labels[:5, :5] = 1
    _png_mask(tmp_path / "annotations" / "validation" / "ADE_val_00000001.png", labels, palette=False)
    _, target = ade20k(tmp_path, "validation")[0]
    assert sorted(target["semantic"].unique().tolist()) == [0, 149, 255]
    with pytest.raises(TaskDataError, match=r"no \.jpg images"):
        ade20k(tmp_path, "training")
