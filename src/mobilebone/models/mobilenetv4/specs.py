"""MobileNetV4 variants as typed block tables (MNv4 paper appendix; official TF ``mobilenet.py`` specs).

Each variant lists its stem width and five stages (timm's ``blocks.0`` … ``blocks.4``): stages 0–3 end at
strides 4, 8, 16, 32 and stage 4 is the 1×1 conv to 960 channels before the head. The helpers mirror the
official TF helpers, e.g. ``uib(3, 5, 2, 80, 4.0)`` = start-DW 3×3, middle-DW 5×5, stride 2, 80 channels,
expand 4. A kernel of 0 means "no such depthwise conv". The tables equal timm's definitions block by block
(timm ``mobilenetv3.py``, ``_gen_mobilenet_v4``), which the published checkpoints need; they are ~5 % larger
than the paper's own counts (see docs/models.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ConvSpec:
    """Plain conv + BN + act, no residual (TF ``convbn``): Conv-S's early stages and the 1×1 → 960 conv."""

    kernel: int
    stride: int
    out_chs: int


@dataclass(frozen=True)
class FusedIBSpec:
    """Fused inverted bottleneck: dense k×k conv expanding to ``in × expand``, then 1×1 projection."""

    kernel: int
    stride: int
    out_chs: int
    expand: float


@dataclass(frozen=True)
class UIBSpec:
    """Universal inverted bottleneck; ``start_dw``/``mid_dw`` are kernel sizes, 0 when absent (§3.2).

    ExtraDW: both; ConvNext-like: start only; IB: middle only; FFN: neither. Expansion is relative to the
    block's input channels (timm ``_efficientnet_blocks.py``, ``UniversalInvertedResidual``).
    """

    start_dw: int
    mid_dw: int
    stride: int
    out_chs: int
    expand: float

    @property
    def form(self) -> str:
        """The UIB form's name: ExtraDW, ConvNext, IB or FFN (from which depthwise convs are present)."""
        return {(True, True): "ExtraDW", (True, False): "ConvNext", (False, True): "IB"}.get(
            (bool(self.start_dw), bool(self.mid_dw)), "FFN"
        )


@dataclass(frozen=True)
class MQASpec:
    """Mobile multi-query attention block (§3.3): heads, per-head key/value dims, K/V spatial stride."""

    num_heads: int
    key_dim: int
    value_dim: int
    kv_stride: int


BlockSpec = ConvSpec | FusedIBSpec | UIBSpec | MQASpec


def convbn(kernel: int, stride: int, out_chs: int) -> ConvSpec:
    """Conv k×k + BN + act."""
    return ConvSpec(kernel, stride, out_chs)


def fused_ib(kernel: int, stride: int, out_chs: int, expand: float) -> FusedIBSpec:
    """FusedIB block."""
    return FusedIBSpec(kernel, stride, out_chs, expand)


def uib(start_dw: int, mid_dw: int, stride: int, out_chs: int, expand: float) -> UIBSpec:
    """UIB block, argument order of the TF helper: start-DW kernel, middle-DW kernel, stride, channels, expand."""
    return UIBSpec(start_dw, mid_dw, stride, out_chs, expand)


def mqa(num_heads: int, key_dim: int, kv_stride: int) -> MQASpec:
    """Mobile-MQA block with value dim = key dim (as every MNv4 variant)."""
    return MQASpec(num_heads, key_dim, key_dim, kv_stride)


@dataclass(frozen=True)
class MobileNetV4Spec:
    """One MNv4 variant: stem width, five stages of blocks, activation, layer scale, head width."""

    stem_chs: int
    stages: tuple[tuple[BlockSpec, ...], ...]
    act: Literal["relu", "gelu"] = "relu"
    layer_scale: float | None = None  # hybrids: γ init 1e-5 on every UIB and MQA block (timm)
    head_chs: int = 1280
    input_size: int = 224  # the paper's (and timm's default tag's) resolution


def _pairs(attn: MQASpec, *blocks: UIBSpec) -> tuple[BlockSpec, ...]:
    """``[attn, block]`` for each block: the hybrids' alternating tail."""
    return tuple(b for block in blocks for b in (attn, block))


HEAD_CONV = (convbn(1, 1, 960),)

CONV_SMALL = MobileNetV4Spec(
    stem_chs=32,
    stages=(
        (convbn(3, 2, 32), convbn(1, 1, 32)),
        (convbn(3, 2, 96), convbn(1, 1, 64)),
        (
            uib(5, 5, 2, 96, 3.0),  # ExtraDW
            *[uib(0, 3, 1, 96, 2.0)] * 4,  # IB
            uib(3, 0, 1, 96, 4.0),  # ConvNext
        ),
        (
            uib(3, 3, 2, 128, 6.0),  # ExtraDW
            uib(5, 5, 1, 128, 4.0),  # ExtraDW
            uib(0, 5, 1, 128, 4.0),  # IB
            uib(0, 5, 1, 128, 3.0),  # IB
            *[uib(0, 3, 1, 128, 4.0)] * 2,  # IB
        ),
        HEAD_CONV,
    ),
    input_size=224,
)

_MEDIUM_STAGE1 = (uib(3, 5, 2, 80, 4.0), uib(3, 3, 1, 80, 2.0))

CONV_MEDIUM = MobileNetV4Spec(
    stem_chs=32,
    stages=(
        (fused_ib(3, 2, 48, 4.0),),
        _MEDIUM_STAGE1,
        (
            uib(3, 5, 2, 160, 6.0),
            *[uib(3, 3, 1, 160, 4.0)] * 2,
            uib(3, 5, 1, 160, 4.0),
            uib(3, 3, 1, 160, 4.0),
            uib(3, 0, 1, 160, 4.0),  # ConvNext
            uib(0, 0, 1, 160, 2.0),  # FFN
            uib(3, 0, 1, 160, 4.0),  # ConvNext
        ),
        (
            uib(5, 5, 2, 256, 6.0),
            uib(5, 5, 1, 256, 4.0),
            *[uib(3, 5, 1, 256, 4.0)] * 2,
            uib(0, 0, 1, 256, 4.0),  # FFN
            uib(3, 0, 1, 256, 4.0),  # ConvNext
            uib(3, 5, 1, 256, 2.0),
            uib(5, 5, 1, 256, 4.0),
            *[uib(0, 0, 1, 256, 4.0)] * 2,  # FFN
            uib(5, 0, 1, 256, 2.0),  # ConvNext
        ),
        HEAD_CONV,
    ),
    input_size=256,
)

_LARGE_STAGE1 = (uib(3, 5, 2, 96, 4.0), uib(3, 3, 1, 96, 4.0))
# Stage 2 of Conv-L and Hybrid-L share their first seven blocks; stage 3 its first ten.
_LARGE_STAGE2_HEAD = (
    uib(3, 5, 2, 192, 4.0),
    *[uib(3, 3, 1, 192, 4.0)] * 3,
    uib(3, 5, 1, 192, 4.0),
    *[uib(5, 3, 1, 192, 4.0)] * 2,
)
_LARGE_STAGE3_HEAD = (
    uib(5, 5, 2, 512, 4.0),
    *[uib(5, 5, 1, 512, 4.0)] * 3,
    uib(5, 0, 1, 512, 4.0),
    uib(5, 3, 1, 512, 4.0),
    *[uib(5, 0, 1, 512, 4.0)] * 2,
    uib(5, 3, 1, 512, 4.0),
    uib(5, 5, 1, 512, 4.0),
)

CONV_LARGE = MobileNetV4Spec(
    stem_chs=24,
    stages=(
        (fused_ib(3, 2, 48, 4.0),),
        _LARGE_STAGE1,
        (*_LARGE_STAGE2_HEAD, *[uib(5, 3, 1, 192, 4.0)] * 3, uib(3, 0, 1, 192, 4.0)),
        (*_LARGE_STAGE3_HEAD, *[uib(5, 0, 1, 512, 4.0)] * 3),
        HEAD_CONV,
    ),
    input_size=384,
)

HYBRID_MEDIUM = MobileNetV4Spec(
    stem_chs=32,
    stages=(
        (fused_ib(3, 2, 48, 4.0),),
        _MEDIUM_STAGE1,
        (
            uib(3, 5, 2, 160, 6.0),
            uib(0, 0, 1, 160, 2.0),  # FFN
            uib(3, 3, 1, 160, 4.0),
            uib(3, 5, 1, 160, 4.0),
            # MQA with K/V reduced by a stride-2 depthwise conv (stride-16 stage only).
            *_pairs(
                mqa(4, 64, kv_stride=2),
                uib(3, 3, 1, 160, 4.0),
                uib(3, 0, 1, 160, 4.0),
                uib(3, 3, 1, 160, 4.0),
                uib(3, 0, 1, 160, 4.0),
            ),
        ),
        (
            uib(5, 5, 2, 256, 6.0),
            uib(5, 5, 1, 256, 4.0),
            *[uib(3, 5, 1, 256, 4.0)] * 2,
            uib(0, 0, 1, 256, 2.0),  # FFN
            uib(3, 5, 1, 256, 2.0),
            uib(0, 0, 1, 256, 2.0),  # FFN
            uib(0, 0, 1, 256, 4.0),  # FFN
            *_pairs(
                mqa(4, 64, kv_stride=1),
                uib(3, 0, 1, 256, 4.0),
                uib(5, 5, 1, 256, 4.0),
                uib(5, 0, 1, 256, 4.0),
                uib(5, 0, 1, 256, 4.0),
            ),
        ),
        HEAD_CONV,
    ),
    layer_scale=1e-5,
    input_size=256,
)

HYBRID_LARGE = MobileNetV4Spec(
    stem_chs=24,
    stages=(
        (fused_ib(3, 2, 48, 4.0),),
        _LARGE_STAGE1,
        (
            *_LARGE_STAGE2_HEAD,
            *_pairs(
                mqa(8, 48, kv_stride=2),
                *[uib(5, 3, 1, 192, 4.0)] * 3,
                uib(3, 0, 1, 192, 4.0),
            ),
        ),
        (
            *_LARGE_STAGE3_HEAD,
            *_pairs(mqa(8, 64, kv_stride=1), *[uib(5, 0, 1, 512, 4.0)] * 4),
        ),
        HEAD_CONV,
    ),
    act="gelu",
    layer_scale=1e-5,
    input_size=384,
)

SPECS: dict[str, MobileNetV4Spec] = {
    "conv_small": CONV_SMALL,
    "conv_medium": CONV_MEDIUM,
    "conv_large": CONV_LARGE,
    "hybrid_medium": HYBRID_MEDIUM,
    "hybrid_large": HYBRID_LARGE,
}
