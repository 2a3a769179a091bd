"""The embedded data set: image classification of shapes and textures, generated from a seed.

No data can be downloaded here, so ``mobilebone train`` without ``--data`` trains on images drawn with PIL:
every image is a random shape or texture (the class) in a random colour on a random background, at a
random position and size, with pixel noise. Image ``i`` of a split depends only on ``(seed, split, i)``, so
the training and evaluation commands regenerate the same images without storing them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

IMAGE_SIZE = 64
RADIUS = (14.0, 24.0)  # shape half-size range, pixels
NOISE_STD = 8.0  # Gaussian pixel noise
_SPLIT_IDS = {"train": 0, "val": 1}


def _circle(draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any) -> None:
    draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fill)


def _square(draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any) -> None:
    draw.rectangle([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fill)


def _polygon(sides: int, rotation: float) -> Callable[..., None]:
    def draw_polygon(
        draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any
    ) -> None:
        turn = rotation + float(rng.uniform(-0.15, 0.15))
        points = [
            (
                c[0] + r * math.cos(turn + 2 * math.pi * k / sides),
                c[1] + r * math.sin(turn + 2 * math.pi * k / sides),
            )
            for k in range(sides)
        ]
        draw.polygon(points, fill=fill)

    return draw_polygon


def _ring(draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any) -> None:
    draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], outline=fill, width=max(2, int(r / 3)))


def _frame(draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any) -> None:
    draw.rectangle([c[0] - r, c[1] - r, c[0] + r, c[1] + r], outline=fill, width=max(2, int(r / 3)))


def _plus(draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any) -> None:
    w = max(2.0, r / 3)
    draw.rectangle([c[0] - r, c[1] - w, c[0] + r, c[1] + w], fill=fill)
    draw.rectangle([c[0] - w, c[1] - r, c[0] + w, c[1] + r], fill=fill)


def _x_cross(draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any) -> None:
    w = max(3, int(r / 2.5))
    draw.line([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fill, width=w)
    draw.line([c[0] - r, c[1] + r, c[0] + r, c[1] - r], fill=fill, width=w)


def _stripes(vertical: bool) -> Callable[..., None]:
    def draw_stripes(
        draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any
    ) -> None:
        period = int(rng.integers(6, 13))
        offset = int(rng.integers(0, period))
        for p in range(-period + offset, IMAGE_SIZE, period):
            box = (
                [p, 0, p + period // 2 - 1, IMAGE_SIZE]
                if vertical
                else [0, p, IMAGE_SIZE, p + period // 2 - 1]
            )
            draw.rectangle(box, fill=fill)

    return draw_stripes


def _checker(draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any) -> None:
    cell = int(rng.integers(6, 13))
    for y in range(0, IMAGE_SIZE, cell):
        for x in range(0, IMAGE_SIZE, cell):
            if (x // cell + y // cell) % 2 == 0:
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=fill)


def _dots(draw: ImageDraw.ImageDraw, c: tuple[float, float], r: float, fill: Any, rng: Any) -> None:
    step = int(rng.integers(9, 15))
    radius = step / 4
    for y in range(step // 2, IMAGE_SIZE, step):
        for x in range(step // 2, IMAGE_SIZE, step):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)


# (name, painter, whole-image texture?) — a class is a shape or a texture; colours are nuisance variables.
CLASSES: list[tuple[str, Callable[..., None], bool]] = [
    ("circle", _circle, False),
    ("square", _square, False),
    ("triangle", _polygon(3, -math.pi / 2), False),
    ("plus", _plus, False),
    ("ring", _ring, False),
    ("horizontal_stripes", _stripes(vertical=False), True),
    ("vertical_stripes", _stripes(vertical=True), True),
    ("checkerboard", _checker, True),
    ("dots", _dots, True),
    ("diamond", _polygon(4, 0.0), False),
    ("frame", _frame, False),
    ("x_cross", _x_cross, False),
    ("hexagon", _polygon(6, 0.0), False),
    ("pentagon", _polygon(5, -math.pi / 2), False),
]
MIN_CLASSES, MAX_CLASSES = 10, len(CLASSES)


def _colour_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A background and a foreground colour that differ clearly in brightness (so every class is visible)."""
    while True:
        bg, fg = rng.integers(0, 256, size=(2, 3))
        if abs(int(fg.mean()) - int(bg.mean())) >= 60:
            return tuple(int(v) for v in bg), tuple(int(v) for v in fg)


def draw_image(seed: int, split: str, index: int, num_classes: int) -> tuple[Image.Image, int]:
    """Image ``index`` of ``split`` (64×64 RGB) and its label; a pure function of its arguments."""
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])
    label = int(rng.integers(0, num_classes))
    _, painter, texture = CLASSES[label]
    bg, fg = _colour_pair(rng)
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), bg)
    radius = float(rng.uniform(*RADIUS))
    margin = 2 if texture else radius + 2
    centre = (
        float(rng.uniform(margin, IMAGE_SIZE - margin)),
        float(rng.uniform(margin, IMAGE_SIZE - margin)),
    )
    painter(ImageDraw.Draw(image), centre, radius, fg, rng)
    pixels = np.asarray(image, dtype=np.int16) + rng.normal(
        0, NOISE_STD, size=(IMAGE_SIZE, IMAGE_SIZE, 3)
    ).astype(np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), label


class SyntheticShapes(Dataset[tuple[Any, int]]):
    """``size`` generated images of one split, kept in memory as uint8 (64×64 RGB each)."""

    def __init__(self, split: str, size: int, *, num_classes: int = MIN_CLASSES, seed: int = 0) -> None:
        if split not in _SPLIT_IDS:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not MIN_CLASSES <= num_classes <= MAX_CLASSES:
            raise ValueError(
                f"the embedded data set has {MIN_CLASSES} to {MAX_CLASSES} classes, got {num_classes}"
            )
        if size < 1:
            raise ValueError(f"the embedded {split} split needs at least 1 image, got {size}")
        self.classes = [name for name, _, _ in CLASSES[:num_classes]]
        images, labels = zip(*(draw_image(seed, split, i, num_classes) for i in range(size)), strict=True)
        self.pixels = np.stack([np.asarray(im) for im in images])  # (N, 64, 64, 3) uint8
        self.targets = list(labels)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.pixels[index]), self.targets[index]
