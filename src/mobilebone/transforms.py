"""Eval preprocessing from a ``pretrained_cfg``: resize, center crop, to tensor, normalize (timm's recipe)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor

from mobilebone.limits import MAX_INPUT_SIZE

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")


class _ConvertMode:
    """Convert any PIL image (palette, RGBA, grayscale, 16-bit) to the mode the model expects."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, image: Image.Image) -> Image.Image:
        return image if image.mode == self.mode else image.convert(self.mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode!r})"


def _size_hw(input_size: Any) -> tuple[int, int]:
    """``(H, W)`` from an ``input_size`` given as ``(C, H, W)``, ``(H, W)`` or a single side."""
    if isinstance(input_size, int):
        return input_size, input_size
    size = tuple(int(v) for v in input_size)
    if len(size) not in (2, 3):
        raise ValueError(f"input_size must be an int, (H, W) or (C, H, W), got {input_size!r}")
    return size[-2], size[-1]


def eval_transform(cfg: Mapping[str, Any]) -> Callable[[Image.Image], Tensor]:
    """PIL image → normalized ``(C, H, W)`` tensor, as timm evaluates: resize to size / crop_pct, center crop.

    ``cfg`` holds ``input_size``, ``crop_pct``, ``interpolation``, ``mean`` and ``std`` (a model's
    ``pretrained_cfg`` or a weight tag's). A square crop resizes the shorter side to
    ``floor(size / crop_pct)`` (keeping the aspect ratio); a non-square one resizes both sides.
    """
    from torchvision import transforms as T

    crop_pct = float(cfg.get("crop_pct", 0.875))
    if not 0.0 < crop_pct <= 1.0:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    interpolation = str(cfg.get("interpolation", "bilinear"))
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; use one of {', '.join(_INTERPOLATIONS)}")
    input_size = cfg.get("input_size", 224)
    channels = int(input_size[0]) if not isinstance(input_size, int) and len(input_size) == 3 else 3
    if channels not in (1, 3):
        raise ValueError(f"eval_transform makes 1- or 3-channel images, the config asks for {channels}")
    height, width = _size_hw(input_size)
    if not (1 <= height <= MAX_INPUT_SIZE and 1 <= width <= MAX_INPUT_SIZE):
        raise ValueError(f"input_size {height}x{width} is outside 1 to {MAX_INPUT_SIZE} px per side")
    mean = tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225)))

    scale_h, scale_w = math.floor(height / crop_pct), math.floor(width / crop_pct)
    resize_to: int | tuple[int, int] = scale_h if scale_h == scale_w else (scale_h, scale_w)
    return T.Compose(
        [
            _ConvertMode("L" if channels == 1 else "RGB"),
            T.Resize(resize_to, interpolation=T.InterpolationMode(interpolation)),
            T.CenterCrop((height, width)),
            T.ToTensor(),
            T.Normalize(mean[:channels], std[:channels]),
        ]
    )
