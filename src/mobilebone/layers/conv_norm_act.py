"""The one unit for "conv + BatchNorm (+ activation)"; its deploy form is a single conv with bias."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from mobilebone.reparam.fuse import fuse_conv_bn

ActFactory = Callable[[], nn.Module]


@torch.no_grad()
def conv_with_weights(
    weight: Tensor,
    bias: Tensor | None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: int | str | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
) -> nn.Conv2d:
    """A new ``nn.Conv2d`` holding ``weight`` and ``bias`` (none when ``bias`` is None).

    Channels and kernel size are read from ``weight`` (C_out, C_in / groups, kH, kW); the new conv lives on
    ``weight``'s device and dtype. Every fusion that replaces a conv (BN folding, branch merging, folding an
    affine into a projection) builds its result with this one function.
    """
    out_chs, in_per_group, kernel_h, kernel_w = weight.shape
    conv = nn.Conv2d(
        in_per_group * groups,
        out_chs,
        (kernel_h, kernel_w),
        stride,  # type: ignore[arg-type]  # Conv2d.stride is typed tuple[int, ...], the parameter _size_2_t
        padding,  # type: ignore[arg-type]
        dilation,  # type: ignore[arg-type]
        groups=groups,
        bias=bias is not None,
        device=weight.device,
        dtype=weight.dtype,
    )
    conv.weight.copy_(weight)
    if bias is not None:
        conv.bias.copy_(bias)  # type: ignore[union-attr]
    return conv


class ConvNormAct(nn.Module):
    """Conv2d (no bias) → BatchNorm2d → activation; ``fused=True`` builds the deploy form directly.

    Padding is symmetric, ``dilation · (kernel_size // 2)`` (timm's "PyTorch same" for odd kernels at stride
    1 and 2). ``dilation`` > 1 serves a backbone built with ``output_stride=16`` (DeepLab's atrous stage).
    State-dict keys: ``conv.weight`` and ``bn.*`` at train time; ``conv.weight``, ``conv.bias`` when fused.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        act_layer: ActFactory | None = None,
        *,
        fused: bool = False,
        bn_eps: float = 1e-5,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_chs,
            out_chs,
            kernel_size,
            stride,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            groups=groups,
            bias=fused,
        )
        self.bn: nn.Module = nn.Identity() if fused else nn.BatchNorm2d(out_chs, eps=bn_eps)
        self.act: nn.Module = act_layer() if act_layer is not None else nn.Identity()

    @property
    def is_fused(self) -> bool:
        """True once the BatchNorm has been folded into the conv."""
        return not isinstance(self.bn, nn.BatchNorm2d)

    def fused_kernel_bias(self) -> tuple[Tensor, Tensor]:
        """The ``(kernel, bias)`` of the single conv equivalent to conv + BN (in eval mode)."""
        weight = self.conv.weight
        if isinstance(self.bn, nn.BatchNorm2d):
            return fuse_conv_bn(weight, self.conv.bias, self.bn)
        bias = self.conv.bias if self.conv.bias is not None else torch.zeros_like(weight[:, 0, 0, 0])
        return weight, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the BatchNorm into the conv in place; a no-op when already fused."""
        if self.is_fused:
            return
        weight, bias = self.fused_kernel_bias()
        conv = self.conv
        self.conv = conv_with_weights(
            weight, bias, stride=conv.stride, padding=conv.padding, groups=conv.groups, dilation=conv.dilation
        )
        self.bn = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))
