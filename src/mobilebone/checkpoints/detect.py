"""Which layout a state dict is in, told from its key names alone, and its conversion to ours."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from mobilebone.checkpoints.formats import apple, timm
from mobilebone.registry import entries, resolve


@dataclass(frozen=True)
class Layout:
    """A detected checkpoint layout: ``name`` (who wrote it), model ``family`` and train-time vs fused."""

    name: str  # "apple", "timm", "mobilebone" or "unknown"
    family: str | None  # "mobileone", "mobilenetv4" or None when unknown
    fused: bool

    def describe(self) -> str:
        """Human-readable, e.g. "Apple MobileOne (fused)"."""
        owner = {"apple": "Apple", "timm": "timm", "mobilebone": "mobilebone"}.get(self.name, "unrecognised")
        family = {"mobileone": "MobileOne", "mobilenetv4": "MobileNetV4"}.get(self.family or "", "model")
        return f"{owner} {family} ({'fused' if self.fused else 'train-time'})"


def is_fused_state(keys: set[str] | list[str]) -> bool:
    """A fused (deploy) state dict has no BatchNorm left: every BN was folded into a conv bias."""
    return not any(k.endswith("running_var") for k in keys)


def detect_layout(state_dict: dict[str, Tensor]) -> Layout:
    """Tell Apple MobileOne, timm MobileOne / MobileNetV4 and mobilebone layouts apart by their keys."""
    keys = set(state_dict)
    fused = is_fused_state(keys)
    if apple.is_apple(keys):
        return Layout("apple", "mobileone", fused)
    if timm.is_timm_mobilenetv4(keys):
        return Layout("timm", "mobilenetv4", fused)
    if "stem.conv.weight" in keys and any(k.startswith("blocks.") for k in keys):
        return Layout("mobilebone", "mobilenetv4", fused)
    if any(k.startswith(("stem.conv_kxk.", "stem.reparam_conv.")) for k in keys):
        # timm and mobilebone MobileOne keys differ only in S4's Squeeze-Excite.
        owner = "mobilebone" if any(".se.fc1." in k for k in keys) else "timm"
        return Layout(owner, "mobileone", fused)
    return Layout("unknown", None, fused)


def to_mobilebone(state_dict: dict[str, Tensor], layout: Layout) -> dict[str, Tensor]:
    """Rename the keys of ``state_dict`` (in ``layout``) to mobilebone's with the converter the family's
    registry entries declare for that layout; values are untouched."""
    for entry in entries():
        converter = entry.converters.get(layout.name) if entry.family == layout.family else None
        if converter is not None:
            convert: Callable[[dict[str, Tensor]], dict[str, Tensor]] = resolve(converter)
            return convert(state_dict)
    return dict(state_dict)
