"""Run a task model on image files and draw the result (torchvision.utils drawing helpers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as F
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from mobilebone.tasks.data.errors import load_rgb


@dataclass(frozen=True)
class Detection:
    """One detected object in the original image's pixel coordinates."""

    box: tuple[float, float, float, float]
    label: int
    score: float


def read_image(path: str | Path) -> Tensor:
    """An image file as a ``uint8`` (3, H, W) tensor; a non-image is one clear error."""
    return F.pil_to_tensor(load_rgb(path))


@torch.no_grad()
def detect(model: nn.Module, image: Tensor, score_thresh: float = 0.3) -> list[Detection]:
    """Detections above ``score_thresh`` for one ``uint8`` image, best first."""
    (out,) = model.eval()([F.to_dtype(image, torch.float32, scale=True)])
    keep = out["scores"] >= score_thresh
    return [
        Detection(tuple(box.tolist()), int(label), float(score))  # type: ignore[arg-type]
        for box, label, score in zip(
            out["boxes"][keep], out["labels"][keep], out["scores"][keep], strict=True
        )
    ]


@torch.no_grad()
def segment(model: nn.Module, image: Tensor, input_size: int | None = None) -> Tensor:
    """Per-pixel class labels ``(H, W)`` for one ``uint8`` image (run at ``input_size`` when given)."""
    height, width = image.shape[-2:]
    x = F.to_dtype(image, torch.float32, scale=True)
    if input_size is not None:
        x = F.resize(x, [input_size, input_size], antialias=True)
    logits = model.eval()(x[None])["out"]
    logits = torch.nn.functional.interpolate(
        logits, size=(height, width), mode="bilinear", align_corners=False
    )
    return logits.argmax(1)[0]


def save_png(image: Tensor, path: str | Path) -> Path:
    """Write a ``uint8`` (3, H, W) image as PNG, atomically (no partial file on failure)."""
    from mobilebone.atomic import atomic_path

    with atomic_path(path) as tmp:
        F.to_pil_image(image).save(tmp, format="PNG")
    return Path(path)


def palette(num_classes: int) -> list[tuple[int, int, int]]:
    """A fixed, distinguishable colour per class (class 0, the background, is never drawn)."""
    gen = torch.Generator().manual_seed(7)
    colours = (torch.rand(num_classes, 3, generator=gen) * 200 + 55).to(torch.uint8)
    return [tuple(c.tolist()) for c in colours]  # type: ignore[misc]


def detection_overlay(image: Tensor, detections: list[Detection], names: list[str]) -> Tensor:
    """The image with one labelled box per detection."""
    if not detections:
        return image
    boxes = torch.tensor([d.box for d in detections])
    colours = palette(len(names))
    return draw_bounding_boxes(
        image,
        boxes,
        labels=[f"{names[d.label]} {d.score:.2f}" for d in detections],
        colors=[colours[d.label] for d in detections],
        width=2,
    )


def segmentation_overlay(image: Tensor, labels: Tensor, num_classes: int, alpha: float = 0.5) -> Tensor:
    """The image with every non-background class painted in its colour."""
    present = [c for c in labels.unique().tolist() if c != 0]
    if not present:
        return image
    masks = torch.stack([labels == c for c in present])
    colours = palette(num_classes)
    return draw_segmentation_masks(image, masks, alpha=alpha, colors=[colours[c] for c in present])
