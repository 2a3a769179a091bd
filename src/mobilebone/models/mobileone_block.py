"""The MobileOne unit (Vasu et al., 2023, §3.1 and Fig. 3): train-time branches, one conv when fused.

Train time, all on the same input and summed (Apple ``ml-mobileone``, ``mobileone.py``):
  * ``k`` conv-BN branches with the unit's kernel (``conv_kxk``),
  * a 1×1 conv-BN "scale" branch when the kernel is larger than 1 (``conv_scale``),
  * a BN-only identity branch when input and output shapes match (``identity``).
Then optional Squeeze-Excite and ReLU. ``reparameterize()`` folds the branches into ``reparam_conv``.

With ``dilation`` d > 1 (a backbone built with ``output_stride=16``) the unit's stride is dropped (as
torchvision's ``InvertedResidual`` does: ``stride`` stays the nominal one, so a unit that was stride 2 gets
no identity branch and keeps its checkpoint keys) and the k×k branches are dilated; the 1×1
and identity branches still fold exactly: their kernels sit at the k×k kernel's centre tap, which a dilated
conv applies at offset 0, as an undilated one does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mobilebone.layers import ConvNormAct, DropPath, SqueezeExcite
from mobilebone.layers.conv_norm_act import conv_with_weights
from mobilebone.reparam.fuse import fuse_conv_bn, identity_kernel, pad_kernel


class MobileOneBlock(nn.Module):
    """One MobileOne unit (depthwise, pointwise or the dense stem conv). Keys follow timm's naming."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        num_conv_branches: int = 1,
        *,
        use_se: bool = False,
        deploy: bool = False,
        drop_path_rate: float = 0.0,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.in_chs, self.out_chs = in_chs, out_chs
        nominal_stride = stride
        stride = 1 if dilation > 1 else stride  # the conv stride; a dilated unit never down-samples
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups
        self.dilation = dilation
        self.reparam_conv: nn.Conv2d | None = None
        self.identity: nn.BatchNorm2d | None = None
        self.conv_kxk: nn.ModuleList | None = None
        self.conv_scale: ConvNormAct | None = None
        if deploy:
            self.reparam_conv = self._make_fused_conv()
        else:
            if in_chs == out_chs and nominal_stride == 1:
                self.identity = nn.BatchNorm2d(in_chs)
            self.conv_kxk = nn.ModuleList(
                ConvNormAct(in_chs, out_chs, kernel_size, stride, groups, dilation=dilation)
                for _ in range(num_conv_branches)
            )
            if kernel_size > 1:
                self.conv_scale = ConvNormAct(in_chs, out_chs, 1, stride, groups)
        self.se: nn.Module = SqueezeExcite(out_chs) if use_se else nn.Identity()
        self.drop_path = DropPath(drop_path_rate)
        self.act = nn.ReLU(inplace=True)

    def _make_fused_conv(self) -> nn.Conv2d:
        k, d = self.kernel_size, self.dilation
        return nn.Conv2d(
            self.in_chs, self.out_chs, k, self.stride, d * (k // 2), dilation=d, groups=self.groups, bias=True
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.reparam_conv is not None:
            return self.act(self.se(self.reparam_conv(x)))
        assert self.conv_kxk is not None
        out = self.conv_scale(x) if self.conv_scale is not None else 0
        for branch in self.conv_kxk:
            out = out + branch(x)
        if self.identity is not None:
            # Stochastic depth drops the learned branches, never the identity (as timm does).
            out = self.drop_path(out) + self.identity(x)
        return self.act(self.se(out))

    def fused_kernel_bias(self) -> tuple[Tensor, Tensor]:
        """Kernel and bias of the single conv equal (in eval mode) to the sum of all branches."""
        if self.reparam_conv is not None:
            return self.reparam_conv.weight, self.reparam_conv.bias  # type: ignore[return-value]
        assert self.conv_kxk is not None
        kernels, biases = [], []
        for branch in self.conv_kxk:
            kernel, bias = branch.fused_kernel_bias()  # type: ignore[operator]
            kernels.append(kernel)
            biases.append(bias)
        if self.conv_scale is not None:
            kernel, bias = self.conv_scale.fused_kernel_bias()
            kernels.append(pad_kernel(kernel, self.kernel_size))
            biases.append(bias)
        if self.identity is not None:
            ref = kernels[0]
            eye = identity_kernel(
                self.in_chs, self.groups, self.kernel_size, dtype=ref.dtype, device=ref.device
            )
            kernel, bias = fuse_conv_bn(eye, None, self.identity)
            kernels.append(kernel)
            biases.append(bias)
        return torch.stack(kernels).sum(0), torch.stack(biases).sum(0)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the branches by one conv with bias (eval-mode statistics); no-op when already fused."""
        if self.reparam_conv is not None:
            return
        kernel, bias = self.fused_kernel_bias()
        self.reparam_conv = conv_with_weights(
            kernel,
            bias,
            stride=self.stride,
            padding=self.dilation * (self.kernel_size // 2),
            groups=self.groups,
            dilation=self.dilation,
        )
        self.conv_kxk = None
        self.conv_scale = None
        self.identity = None
