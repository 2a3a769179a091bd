"""The embedded shapes set, the v2 task transforms and the torchmetrics-based task metrics."""

from __future__ import annotations

import pytest
import torch

from mobilebone.tasks.data.synthetic import CLASSES, SyntheticShapes
from mobilebone.tasks.data.transforms import detection_transforms, segmentation_transforms
from mobilebone.tasks.metrics import DetectionMetric, SegmentationMetric


def _mask_box(mask: torch.Tensor) -> list[float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1]


def test_synthetic_is_deterministic_and_splits_differ() -> None:
    a, b = SyntheticShapes("train", length=4, seed=3), SyntheticShapes("train", length=4, seed=3)
    image_a, target_a = a[2]
    image_b, target_b = b[2]
    torch.testing.assert_close(image_a, image_b, rtol=0, atol=0)
    torch.testing.assert_close(target_a["boxes"], target_b["boxes"], rtol=0, atol=0)
    val_image, _ = SyntheticShapes("val", length=4, seed=3)[2]
    other_seed, _ = SyntheticShapes("train", length=4, seed=4)[2]
    assert not torch.equal(image_a, val_image) and not torch.equal(image_a, other_seed)


def test_synthetic_targets_agree_with_each_other() -> None:
    data = SyntheticShapes("val", length=6, size=96)
    seen = set()
    for index in range(len(data)):
        image, target = data[index]
        assert image.shape == (3, 96, 96) and float(image.min()) >= 0 and float(image.max()) <= 1
        assert len(target["boxes"]) == len(target["labels"]) == len(target["masks"]) >= 1
        for box, label, mask in zip(target["boxes"], target["labels"], target["masks"], strict=True):
            assert box.tolist() == _mask_box(mask)  # the box is the visible mask's extent
            assert bool((target["semantic"][mask] == label).all())  # instance and semantic masks agree
            seen.add(int(label))
        assert set(target["semantic"].unique().tolist()) <= set(range(len(CLASSES) + 1))
    assert len(seen) >= 2


def test_detection_transforms_move_boxes_with_masks() -> None:
    torch.manual_seed(5)
    data = SyntheticShapes("train", length=8, size=96, transforms=detection_transforms(train=True))
    raw = SyntheticShapes("train", length=8, size=96)
    flipped = 0
    for index in range(len(data)):
        image, target = data[index]
        assert image.dtype == torch.float32
        for box, mask in zip(target["boxes"], target["masks"], strict=True):
            assert box.tolist() == pytest.approx(_mask_box(mask), abs=1e-4)
        flipped += not torch.equal(target["masks"], raw[index][1]["masks"])
    assert flipped > 0  # some samples were flipped, and their boxes followed


def test_segmentation_transforms_keep_labels_nearest() -> None:
    torch.manual_seed(1)
    image, target = SyntheticShapes("train", length=2, size=96, transforms=segmentation_transforms(True, 64))[
        1
    ]
    assert image.shape == (3, 64, 64) and target["semantic"].shape == (64, 64)
    assert set(target["semantic"].unique().tolist()) <= set(range(len(CLASSES) + 1))  # no blended labels


def test_segmentation_eval_transforms_without_size_keep_the_image_size() -> None:
    image, target = SyntheticShapes(
        "val", length=1, size=40, transforms=segmentation_transforms(False, None)
    )[0]
    assert image.shape[-2:] == target["semantic"].shape[-2:] == (40, 40)
    with pytest.raises(ValueError, match="crop size"):
        segmentation_transforms(True, None)


def test_detection_metric_perfect_and_shifted() -> None:
    boxes = torch.tensor([[10.0, 10.0, 50.0, 50.0], [60.0, 60.0, 90.0, 100.0]])
    labels = torch.tensor([1, 2])
    truth = [{"boxes": boxes, "labels": labels}]
    perfect = DetectionMetric()
    perfect.update([{"boxes": boxes, "scores": torch.tensor([0.9, 0.8]), "labels": labels}], truth)
    scores = perfect.compute()
    assert scores.map == pytest.approx(1.0) and scores.map_50 == pytest.approx(1.0)
    # Shift box 1 by 8 px: IoU = 32*40 / (40*40 + 40*40 - 32*40) = 0.667 — found at .50, lost above .65.
    shifted = DetectionMetric()
    moved = boxes + torch.tensor([[8.0, 0.0, 8.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    shifted.update([{"boxes": moved, "scores": torch.tensor([0.9, 0.8]), "labels": labels}], truth)
    result = shifted.compute()
    assert result.map_50 == pytest.approx(1.0)
    # Class 1 scores 1 at IoU .50, .55, .60, .65 (4 of 10 thresholds), class 2 at all 10: (0.4 + 1) / 2.
    assert result.map == pytest.approx(0.7, abs=1e-3)


def test_segmentation_metric_by_hand() -> None:
    target = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 255]]])
    pred = torch.tensor([[[0, 1, 1, 1], [0, 0, 1, 0]]])
    metric = SegmentationMetric(num_classes=2)
    metric.update(pred, target)
    scores = metric.compute()
    # Ignoring the 255 pixel: class 0: |{4 ∩ 3}| = 3 / |∪| = 4; class 1: 3 / 4. Pixel accuracy 6 / 7.
    assert scores.miou == pytest.approx(0.75)
    assert scores.pixel_accuracy == pytest.approx(6 / 7)
