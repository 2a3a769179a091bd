"""Model registry: architecture names → builders and their default (eval) configuration."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its builder, family and default input/preprocessing config."""

    name: str
    builder: Callable[..., nn.Module]
    family: str
    default_cfg: dict[str, Any] = field(default_factory=dict)


_MODELS: dict[str, ModelEntry] = {}


def default_cfg(
    input_size: int = 224,
    crop_pct: float = 0.875,
    interpolation: str = "bilinear",
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    **extra: Any,
) -> dict[str, Any]:
    """Build an eval-preprocessing config dict (timm's ``pretrained_cfg`` keys)."""
    return {
        "input_size": (3, input_size, input_size),
        "crop_pct": crop_pct,
        "interpolation": interpolation,
        "mean": mean,
        "std": std,
        **extra,
    }


def register_model(
    name: str, *, family: str, cfg: dict[str, Any] | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder under ``name``; a duplicate name raises."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = ModelEntry(name, builder, family, dict(cfg or default_cfg()))
        return builder

    return decorator


def get_entry(name: str) -> ModelEntry:
    """Look up a registered architecture; an unknown name raises ``ValueError`` listing close matches."""
    arch = name.split(".", 1)[0]
    if arch in _MODELS:
        return _MODELS[arch]
    close = difflib.get_close_matches(arch, list(_MODELS), n=5, cutoff=0.5)
    hint = f"; did you mean: {', '.join(close)}?" if close else "; run `mobilebone list` to see all models"
    raise ValueError(f"unknown model {name!r}{hint}")


def list_architectures(pattern: str = "*") -> list[str]:
    """Sorted names of registered architectures matching a shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))
