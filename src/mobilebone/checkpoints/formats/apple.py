"""Apple ml-mobileone checkpoints (``mobileone_sX_unfused.pth.tar`` and fused ``mobileone_sX.pth.tar``).

Apple ↔ timm is a pure rename (Apple `mobileone.py` vs timm `byobnet.py` module names); mobilebone's MobileOne keys equal timm's except SE
(``se.fc1/fc2`` here). Tensor shapes are identical, so conversion never touches the values.
"""

from __future__ import annotations

import re

from torch import Tensor

# (pattern, replacement) applied in order to every key; anchored on dots so no key is renamed twice.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^stage0\.", "stem."),
    (r"^linear\.", "head.fc."),
    (r"\.rbr_conv\.", ".conv_kxk."),
    (r"\.rbr_scale\.", ".conv_scale."),
    (r"\.rbr_skip\.", ".identity."),
    (r"\.se\.reduce\.", ".se.fc1."),
    (r"\.se\.expand\.", ".se.fc2."),
)
_STAGE = re.compile(r"^stage([1-4])\.")


def is_apple(keys: set[str]) -> bool:
    """Apple's layout names the stem ``stage0`` and the classifier ``linear``."""
    return any(k.startswith("stage0.") for k in keys) or {"linear.weight", "linear.bias"} <= keys


def to_mobilebone(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename Apple MobileOne keys (fused or unfused) to mobilebone's."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        new = _STAGE.sub(lambda m: f"stages.{int(m.group(1)) - 1}.", key)
        for pattern, replacement in _RENAMES:
            new = re.sub(pattern, replacement, new)
        out[new] = value
    return out
