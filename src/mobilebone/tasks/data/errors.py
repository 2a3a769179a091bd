"""The one error type task data readers raise: a ``ValueError`` whose message names the file and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# numpy and PIL are imported in the readers below: the layout table (``train --help``) imports this module.


class TaskDataError(ValueError):
    """A dataset file is missing, unreadable or inconsistent (the message says which and why)."""


def load_rgb(path: str | Path) -> Any:
    """Open an image file as RGB; anything that is not a readable image is a ``TaskDataError``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise TaskDataError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as err:
        raise TaskDataError(f"{path}: not a readable image ({type(err).__name__})") from None


def load_label_mask(path: str | Path, image_size: tuple[int, int]) -> np.ndarray:
    """Read a class-index mask (palette or grayscale PNG) and check it matches its image's ``(W, H)``."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as mask:
            if mask.mode not in ("P", "L", "I", "I;16"):
                raise TaskDataError(
                    f"{path}: a label mask must be a palette or grayscale PNG, not {mask.mode}"
                )
            if mask.size != image_size:
                raise TaskDataError(
                    f"{path}: mask is {mask.size[0]}x{mask.size[1]} but its image is "
                    f"{image_size[0]}x{image_size[1]}"
                )
            return np.array(mask, dtype=np.int64)
    except FileNotFoundError:
        raise TaskDataError(f"{path}: no such mask file") from None
    except UnidentifiedImageError:
        raise TaskDataError(f"{path}: not a readable mask image") from None
