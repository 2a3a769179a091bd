"""timm checkpoints: MobileOne (``byobnet``, unfused or reparameterized) and MobileNetV4 (``mobilenetv3``).

MobileOne: keys equal mobilebone's except Squeeze-Excite (timm ``attn.fc1/fc2`` → ``se.fc1/fc2``, S4).
MobileNetV4: the renames of the key table in ``mobilebone.models.mobilenetv4``: timm
keeps bare ``conv``/``bn1`` tensors on the stem, head, ConvBnAct and FusedIB blocks, where mobilebone
uses one ``ConvNormAct`` unit (``.conv`` + ``.bn``) per conv.
"""

from __future__ import annotations

import re

from torch import Tensor

_MQA_OR_UIB = re.compile(r"^blocks\.\d+\.\d+\.")


def is_timm_mobilenetv4(keys: set[str]) -> bool:
    """timm's MNv4 has a bare ``conv_stem`` tensor and a ``norm_head`` BatchNorm."""
    return "conv_stem.weight" in keys


def mobileone_to_mobilebone(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename timm MobileOne keys (only the S4 Squeeze-Excite differs)."""
    return {
        key.replace(".attn.fc1.", ".se.fc1.").replace(".attn.fc2.", ".se.fc2."): v
        for key, v in state_dict.items()
    }


def _block_prefixes(keys: set[str], leaf: str) -> set[str]:
    """``blocks.S.B.`` prefixes of the blocks that hold ``leaf`` directly (e.g. ``conv.weight``)."""
    return {k[: -len(leaf)] for k in keys if k.endswith(leaf) and _MQA_OR_UIB.fullmatch(k[: -len(leaf)])}


def mobilenetv4_to_mobilebone(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename timm MobileNetV4 keys to mobilebone's (train-time form; timm has no fused MNv4)."""
    keys = set(state_dict)
    renames: list[tuple[str, str]] = [
        ("conv_stem.weight", "stem.conv.weight"),
        ("bn1.", "stem.bn."),
        ("conv_head.weight", "conv_head.conv.weight"),
        ("norm_head.", "conv_head.bn."),
    ]
    for prefix in _block_prefixes(keys, "conv.weight"):  # ConvBnAct blocks: bn1 → bn
        renames.append((f"{prefix}bn1.", f"{prefix}bn."))
    for prefix in _block_prefixes(keys, "conv_exp.weight"):  # FusedIB (timm EdgeResidual)
        renames += [
            (f"{prefix}conv_exp.weight", f"{prefix}conv_exp.conv.weight"),
            (f"{prefix}bn1.", f"{prefix}conv_exp.bn."),
            (f"{prefix}conv_pwl.weight", f"{prefix}conv_pwl.conv.weight"),
            (f"{prefix}bn2.", f"{prefix}conv_pwl.bn."),
        ]
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        new = key
        for old, replacement in renames:
            if key == old or (old.endswith(".") and key.startswith(old)):
                new = replacement + key[len(old) :]
                break
        out[new] = value
    return out
