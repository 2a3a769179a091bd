"""Pure tensor math of structural reparameterization (MobileOne, Vasu et al. 2023, arXiv 2206.04040 §3.1).

Every function takes tensors or a BatchNorm and returns new tensors; nothing here touches a model.
A train-time branch is always reduced to ``(kernel, bias)`` of one convolution, and branches are fused by
adding their kernels and biases, which is exact because convolution is linear in its kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Return the per-channel ``(scale, shift)`` an eval-mode BatchNorm applies: ``y = x * scale + shift``."""
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    return scale, beta - bn.running_mean * scale


def fuse_conv_bn(weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Fold a BatchNorm that follows a conv into that conv: ``W' = W·t``, ``b' = β + (b − μ)·t``."""
    scale, shift = bn_scale_shift(bn)
    fused_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    fused_bias = shift if bias is None else shift + bias * scale
    return fused_weight, fused_bias


def pad_kernel(weight: Tensor, kernel_size: int) -> Tensor:
    """Zero-pad a smaller odd kernel symmetrically so it sits at the centre of a ``kernel_size`` kernel."""
    pad = (kernel_size - weight.shape[-1]) // 2
    if pad < 0 or weight.shape[-1] + 2 * pad != kernel_size:
        raise ValueError(f"cannot centre a {weight.shape[-1]}x{weight.shape[-1]} kernel in {kernel_size}")
    return F.pad(weight, [pad, pad, pad, pad]) if pad else weight


def identity_kernel(
    channels: int, groups: int, kernel_size: int, *, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """Kernel of a conv computing the identity: shape ``(C, C/groups, K, K)``, one 1 per output channel."""
    in_per_group = channels // groups
    kernel = torch.zeros(channels, in_per_group, kernel_size, kernel_size, dtype=dtype, device=device)
    centre = kernel_size // 2
    idx = torch.arange(channels, device=device)
    kernel[idx, idx % in_per_group, centre, centre] = 1.0
    return kernel


def scale_conv_output(weight: Tensor, bias: Tensor | None, scale: Tensor) -> tuple[Tensor, Tensor | None]:
    """Fold a per-output-channel multiplier (e.g. layer scale γ) that follows a conv: ``W·γ``, ``b·γ``."""
    if scale.numel() != weight.shape[0]:
        raise ValueError(f"scale has {scale.numel()} channels, the conv has {weight.shape[0]} outputs")
    scaled_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return scaled_weight, None if bias is None else bias * scale


def fold_affine_into_conv1x1(
    weight: Tensor, bias: Tensor | None, scale: Tensor, shift: Tensor
) -> tuple[Tensor, Tensor]:
    """Fold a per-channel affine ``x·s + t`` that precedes an unpadded dense 1×1 conv into that conv.

    ``W(x·s + t) + b = (W·diag(s)) x + (W t + b)``. Exact only for 1×1 kernels without padding: a padded
    conv would see the zero padding untransformed (the border pixels would get ``b`` instead of ``W t + b``).
    """
    if weight.shape[-2:] != (1, 1) or weight.shape[1] != scale.numel():
        raise ValueError(
            f"can only fold an input affine of {scale.numel()} channels into a dense 1x1 conv, "
            f"got a kernel of shape {tuple(weight.shape)}"
        )
    folded_weight = weight * scale.reshape(1, -1, 1, 1)
    folded_bias = weight[:, :, 0, 0] @ shift
    return folded_weight, folded_bias if bias is None else folded_bias + bias
