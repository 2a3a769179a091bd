"""Images for int8 calibration and for checking the quantized model: a folder of images, or generated ones.

Folder images are preprocessed with the model's eval transform (resize, center crop, normalize with the
model's mean/std). Without a folder, smooth random images stand in: they exercise every layer but are not
natural images, so calibration ranges and agreement numbers from them say little about real accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mobilebone.export.errors import ExportError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def find_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively, so an ImageFolder tree works), in a stable order."""
    root = Path(folder)
    if not root.is_dir():
        raise ExportError(f"calibration folder {str(root)!r} does not exist or is not a folder")
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise ExportError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {str(root)!r}")
    return images


def check_calibration(source: str | Path) -> list[Path]:
    """The images of a calibration folder; raise ``ExportError`` unless there are at least 2 (some
    calibrate, the others check). Cheap: call it before any export work."""
    paths = find_images(source)
    if len(paths) < 2:
        raise ExportError(f"need at least 2 images in {str(source)!r}: some calibrate, the others check")
    return paths


def image_transform(cfg: dict[str, Any], size: tuple[int, int]) -> Callable[[Any], Tensor]:
    """The model's eval transform (``mobilebone.transforms.eval_transform``) at ``size``."""
    from mobilebone.transforms import eval_transform

    return eval_transform(dict(cfg, input_size=(3, *size)))


def load_images(paths: list[Path], cfg: dict[str, Any], size: tuple[int, int]) -> Tensor:
    """Load and preprocess images into one ``(N, 3, H, W)`` batch; unreadable files raise ``ExportError``."""
    from PIL import Image, UnidentifiedImageError

    transform = image_transform(cfg, size)
    tensors = []
    for path in paths:
        try:
            with Image.open(path) as image:
                tensors.append(transform(image.convert("RGB")))
        except (OSError, UnidentifiedImageError) as err:
            raise ExportError(f"cannot read calibration image {str(path)!r}: {err}") from err
    return torch.stack(tensors)


def generated_images(count: int, cfg: dict[str, Any], size: tuple[int, int], seed: int = 0) -> Tensor:
    """``count`` smooth random RGB images (low-res colour fields plus fine noise), normalized like real ones."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 8, 8, generator=generator)
    pixels = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    pixels = (pixels + 0.1 * torch.randn(count, 3, *size, generator=generator)).clamp(0, 1)
    mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, -1, 1, 1)
    std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, -1, 1, 1)
    return (pixels - mean) / std


def calibration_split(
    source: str | Path | None,
    cfg: dict[str, Any],
    size: tuple[int, int],
    num_calibration: int,
    num_eval: int,
) -> tuple[Tensor, Tensor, str]:
    """``(calibration batch, held-out batch, description)`` from a folder (first images calibrate, the rest
    are held out) or from generated images."""
    if num_calibration < 1:
        raise ExportError(f"num_calibration must be >= 1, got {num_calibration}")
    if source is None:
        images = generated_images(num_calibration + num_eval, cfg, size)
        return images[:num_calibration], images[num_calibration:], "generated smooth random images"
    paths = check_calibration(source)
    used = min(num_calibration, len(paths) - 1)  # keep at least one image held out
    calib = load_images(paths[:used], cfg, size)
    held = load_images(paths[used : used + num_eval], cfg, size)
    return calib, held, f"{used} images from {source} ({len(held)} others held out)"
