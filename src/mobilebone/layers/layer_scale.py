"""Per-channel affine layers: layer scale (Touvron et al., CaiT 2021) and a plain scale-and-shift.

Layer scale multiplies a residual branch by a learnable per-channel γ (MobileNetV4 hybrids, init 1e-5,
as timm ``mobilenetv3.py``). ``ScaleShift2d`` is the deploy form of a BatchNorm that cannot be folded into its
neighbours (the Mobile-MQA pre-norm in front of padded K/V down-convs, whose zero padding would not see a folded shift).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LayerScale2d(nn.Module):
    """Multiply an NCHW tensor by a learnable per-channel ``gamma`` (state-dict key ``gamma``, as timm)."""

    def __init__(self, channels: int, init_value: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma.reshape(1, -1, 1, 1)


class ScaleShift2d(nn.Module):
    """``y = x * scale + shift`` per channel of an NCHW tensor: an eval-mode BatchNorm without the BN op."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.reshape(1, -1, 1, 1) + self.shift.reshape(1, -1, 1, 1)
