"""The 30-layer study network of the MobileOne paper (§3, Table 1(b) and the activation table).

The paper benchmarks "a 30-layer convolutional neural network" that differs only in its activation or
in added SE blocks / skip connections, but does not publish its layout (Vasu et al. 2023, §4). Our choice, and
why: a plain MobileNet-V1-style stack of depthwise-separable blocks — the same unit types as MobileOne's
own deploy graph (3×3 depthwise + 1×1 pointwise, BN, ReLU) — with exactly 30 conv layers, each followed by
BatchNorm and one activation (so an activation study swaps exactly 30 activations):

    stem       3×3 conv, stride 2, 3 → 32                                   1 conv
    14 blocks  3×3 depthwise (+act) → 1×1 pointwise (+act), widths below    28 convs
    head conv  1×1, 512 → 1024                                              1 conv
    global average pool → linear classifier (not counted as a conv layer)

Widths/strides double in four stride-2 steps like MobileNet-V1 (32→64→128→256→512, overall stride 32),
giving 0.20 GMACs at 224×224 — the scale of MobileNetV3-Large and MobileOne-S0 (0.22 and 0.275 G).
Options change nothing else: ``se`` adds a Squeeze-Excite after each block's depthwise activation
(MobileNetV3's placement); ``skip`` adds an identity shortcut to every block whose input and output shapes
match (10 of 14), ResNet-style before the block's last activation; ``unit="mobileone"`` builds every conv
as a MobileOne unit (train-time branches or fused, always ReLU, as in MobileOne).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from mobilebone.layers import ConvNormAct, SqueezeExcite
from mobilebone.layers.activations import create_activation
from mobilebone.models.mobileone_block import MobileOneBlock

STEM_CHS = 32
HEAD_CHS = 1024
# (out channels, stride) of the 14 depthwise-separable blocks.
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 2),
    (64, 1),
    (128, 2),
    (128, 1),
    (128, 1),
    (256, 2),
    (256, 1),
    (256, 1),
    (256, 1),
    (256, 1),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
)
NUM_CONV_LAYERS = 1 + 2 * len(BLOCKS) + 1  # = 30
UNITS = ("conv", "mobileone")


@dataclass(frozen=True)
class Unit:
    """How every conv layer is built: ``conv`` (ConvNormAct) or ``mobileone`` (k branches, or fused)."""

    kind: str = "conv"
    branches: int = 4
    deploy: bool = False

    def conv(
        self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, groups: int = 1
    ) -> nn.Module:
        """One conv layer (conv + BN, or a MobileOne unit, which includes its ReLU)."""
        if self.kind == "mobileone":
            return MobileOneBlock(
                in_chs,
                out_chs,
                kernel_size,
                stride,
                groups,
                self.branches,
                deploy=self.deploy,
            )
        return ConvNormAct(in_chs, out_chs, kernel_size, stride, groups)

    def act(self, name: str, channels: int) -> nn.Module:
        """The activation after a conv layer (a MobileOne unit already applied its own ReLU)."""
        return nn.Identity() if self.kind == "mobileone" else create_activation(name, channels)


class SeparableBlock(nn.Module):
    """3×3 depthwise conv → act → (SE) → 1×1 pointwise conv → (+ shortcut) → act."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int,
        *,
        act: str,
        se: bool,
        skip: bool,
        unit: Unit,
    ) -> None:
        super().__init__()
        self.dw = unit.conv(in_chs, in_chs, 3, stride, in_chs)
        self.dw_act = unit.act(act, in_chs)
        self.se: nn.Module = SqueezeExcite(in_chs) if se else nn.Identity()
        self.pw = unit.conv(in_chs, out_chs, 1)
        self.pw_act = unit.act(act, out_chs)
        self.has_skip = skip and stride == 1 and in_chs == out_chs

    def forward(self, x: Tensor) -> Tensor:
        out = self.pw(self.se(self.dw_act(self.dw(x))))
        if self.has_skip:
            out = out + x
        return self.pw_act(out)


class StudyNet(nn.Module):
    """The 30-conv-layer study network; see the module docstring for the layout and the options."""

    def __init__(
        self,
        act: str = "relu",
        *,
        se: bool = False,
        skip: bool = False,
        unit: str = "conv",
        branches: int = 4,
        deploy: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
        if unit == "mobileone" and act != "relu":
            raise ValueError("MobileOne units use ReLU only; build unit='conv' for other activations")
        self.in_chans, self.num_classes = in_chans, num_classes
        spec = Unit(unit, branches, deploy)
        # The MobileOne stem unit has a single conv branch (k = 1, Apple's ml-mobileone mobileone.py, stage0).
        self.stem = Unit(unit, 1, deploy).conv(in_chans, STEM_CHS, 3, 2)
        self.stem_act = spec.act(act, STEM_CHS)
        blocks, chs = [], STEM_CHS
        for out_chs, stride in BLOCKS:
            blocks.append(SeparableBlock(chs, out_chs, stride, act=act, se=se, skip=skip, unit=spec))
            chs = out_chs
        self.blocks = nn.Sequential(*blocks)
        self.head_conv = spec.conv(chs, HEAD_CHS, 1)
        self.head_act = spec.act(act, HEAD_CHS)
        self.fc = nn.Linear(HEAD_CHS, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem_act(self.stem(x)))
        x = self.head_act(self.head_conv(x))
        return self.fc(x.mean((2, 3)))
