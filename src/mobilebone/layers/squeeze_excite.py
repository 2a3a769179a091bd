"""Squeeze-and-Excitation (Hu et al., 2018), as used by MobileOne-S4 (Apple ``ml-mobileone``, ``SEBlock``)."""

from __future__ import annotations

from torch import Tensor, nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping below 90 % of it (MobileNet rule)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class SqueezeExcite(nn.Module):
    """Global average pool → 1×1 conv (C→C/16, bias) → ReLU → 1×1 conv (→C, bias) → sigmoid → scale input.

    The reduced width is ``make_divisible(C / 16, 8)``, which equals Apple's ``int(C * 0.0625)`` for S4.
    """

    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_divisor: int = 8) -> None:
        super().__init__()
        reduced = make_divisible(channels * rd_ratio, rd_divisor)
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))
