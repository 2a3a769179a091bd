"""MobileNetV4 blocks (Qin et al., 2024, §3; timm ``_efficientnet_blocks.py``): FusedIB, UIB and the Mobile-MQA block.

Each block takes ``fused=True`` to build its deploy form directly, and ``reparameterize()`` turns a
train-time block into that form in place (BN folded into convs, layer scale into the last projection).
Forward passes are straight-line: absent parts are ``nn.Identity`` so state-dict keys never depend on options.
``dilation`` > 1 (a backbone built with ``output_stride=16``) dilates the k×k convs and drops the stride, as
torchvision's ``InvertedResidual`` does; ``stride`` stays the nominal one, so the residual is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mobilebone.layers import ConvNormAct, DropPath
from mobilebone.layers.attention import MultiQueryAttention2d
from mobilebone.layers.conv_norm_act import ActFactory
from mobilebone.layers.layer_scale import LayerScale2d, ScaleShift2d
from mobilebone.reparam.fuse import bn_scale_shift, scale_conv_output


def _fold_layer_scale(unit: ConvNormAct, layer_scale: nn.Module) -> None:
    """Fold ``layer_scale.gamma`` into the (already BN-folded, activation-free) conv of ``unit``."""
    gamma = getattr(layer_scale, "gamma", None)
    if gamma is None:
        return
    weight, bias = scale_conv_output(unit.conv.weight, unit.conv.bias, gamma)
    unit.conv.weight.copy_(weight)
    if bias is not None and unit.conv.bias is not None:
        unit.conv.bias.copy_(bias)


class FusedIB(nn.Module):
    """Fused inverted bottleneck (EdgeResidual): dense k×k conv C→E (+BN+act), then 1×1 E→C_out (+BN).

    Keys: ``conv_exp.{conv,bn}``, ``conv_pwl.{conv,bn}`` (timm: ``conv_exp``, ``bn1``, ``conv_pwl``, ``bn2``).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int,
        mid_chs: int,
        act_layer: ActFactory,
        *,
        fused: bool = False,
        drop_path_rate: float = 0.0,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.has_skip = stride == 1 and in_chs == out_chs
        conv_stride = 1 if dilation > 1 else stride
        self.conv_exp = ConvNormAct(
            in_chs, mid_chs, kernel_size, conv_stride, act_layer=act_layer, fused=fused, dilation=dilation
        )
        self.conv_pwl = ConvNormAct(mid_chs, out_chs, 1, fused=fused)
        self.drop_path = DropPath(drop_path_rate if self.has_skip else 0.0)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv_pwl(self.conv_exp(x))
        return x + self.drop_path(out) if self.has_skip else out


class UniversalInvertedBottleneck(nn.Module):
    """UIB (MNv4 §3.2, Fig. 4): [start DW] → 1×1 expand → [middle DW] → 1×1 project → [layer scale] (+x).

    The four forms: ExtraDW (both DWs), ConvNext-like (start only), IB (middle only), FFN (neither).
    The start DW has no activation and carries the stride only when there is no middle DW.
    Keys equal timm's ``UniversalInvertedResidual``: ``dw_start``, ``pw_exp``, ``dw_mid``, ``pw_proj``
    (each ``conv`` + ``bn``), ``layer_scale.gamma``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        start_dw_kernel: int,
        mid_dw_kernel: int,
        stride: int,
        mid_chs: int,
        act_layer: ActFactory,
        *,
        layer_scale: float | None = None,
        fused: bool = False,
        drop_path_rate: float = 0.0,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.has_skip = stride == 1 and in_chs == out_chs
        conv_stride = 1 if dilation > 1 else stride
        self.dw_start: nn.Module = nn.Identity()
        if start_dw_kernel:
            start_stride = 1 if mid_dw_kernel else conv_stride
            self.dw_start = ConvNormAct(
                in_chs, in_chs, start_dw_kernel, start_stride, groups=in_chs, fused=fused, dilation=dilation
            )
        self.pw_exp = ConvNormAct(in_chs, mid_chs, 1, act_layer=act_layer, fused=fused)
        self.dw_mid: nn.Module = nn.Identity()
        if mid_dw_kernel:
            self.dw_mid = ConvNormAct(
                mid_chs,
                mid_chs,
                mid_dw_kernel,
                conv_stride,
                groups=mid_chs,
                act_layer=act_layer,
                fused=fused,
                dilation=dilation,
            )
        if not start_dw_kernel and not mid_dw_kernel and stride != 1:
            raise ValueError("a strided UIB needs a depthwise conv to carry the stride")
        self.pw_proj = ConvNormAct(mid_chs, out_chs, 1, fused=fused)
        # In the deploy form γ lives in pw_proj (exact: pw_proj has no activation), so no module here.
        use_ls = layer_scale is not None and not fused
        self.layer_scale: nn.Module = LayerScale2d(out_chs, layer_scale or 0.0) if use_ls else nn.Identity()
        self.drop_path = DropPath(drop_path_rate if self.has_skip else 0.0)

    def forward(self, x: Tensor) -> Tensor:
        out = self.dw_start(x)
        out = self.pw_exp(out)
        out = self.dw_mid(out)
        out = self.pw_proj(out)
        out = self.layer_scale(out)
        return x + self.drop_path(out) if self.has_skip else out

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold every BN into its conv and layer scale γ into ``pw_proj``; a no-op when already fused."""
        for unit in (self.dw_start, self.pw_exp, self.dw_mid, self.pw_proj):
            if isinstance(unit, ConvNormAct):
                unit.reparameterize()
        _fold_layer_scale(self.pw_proj, self.layer_scale)
        self.layer_scale = nn.Identity()


class MobileMQABlock(nn.Module):
    """Mobile-MQA block (MNv4 §3.3): pre-norm BN → multi-query attention → layer scale → + x.

    Keys equal timm's ``MobileAttention``: ``norm`` (BN), ``attn.*`` (see ``MultiQueryAttention2d``),
    ``layer_scale.gamma``. Deploy form: ``norm`` is folded into the attention's unpadded 1×1 projections;
    with K/V down-sampling the padded down-convs cannot absorb it exactly, so ``kv_norm`` (a plain
    per-channel scale-and-shift, keys ``kv_norm.scale``/``.shift``) applies it to the K/V input only.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        *,
        kv_stride: int = 1,
        layer_scale: float | None = None,
        fused: bool = False,
        attn_impl: str = "sdpa",
        drop_path_rate: float = 0.0,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm: nn.Module = nn.Identity() if fused else nn.BatchNorm2d(dim, eps=bn_eps)
        self.kv_norm: nn.Module = ScaleShift2d(dim) if fused and kv_stride > 1 else nn.Identity()
        self.attn = MultiQueryAttention2d(
            dim,
            num_heads,
            key_dim,
            value_dim,
            kv_stride=kv_stride,
            fused=fused,
            attn_impl=attn_impl,
            bn_eps=bn_eps,
        )
        use_ls = layer_scale is not None and not fused
        self.layer_scale: nn.Module = LayerScale2d(dim, layer_scale or 0.0) if use_ls else nn.Identity()
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: Tensor) -> Tensor:
        x_norm = self.norm(x)  # deploy: Identity, the affine lives in the projections
        out = self.attn(x_norm, self.kv_norm(x_norm))  # deploy with KV stride 2: explicit affine for K/V
        return x + self.drop_path(self.layer_scale(out))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the pre-norm and the K/V BNs into convs and γ into the output projection, in place."""
        self.attn.reparameterize()
        if isinstance(self.norm, nn.BatchNorm2d):
            scale, shift = bn_scale_shift(self.norm)
            if self.attn.absorb_input_affine(scale, shift):
                kv_norm = ScaleShift2d(scale.numel()).to(device=scale.device, dtype=scale.dtype)
                kv_norm.scale.copy_(scale)
                kv_norm.shift.copy_(shift)
                self.kv_norm = kv_norm
            self.norm = nn.Identity()
        gamma = getattr(self.layer_scale, "gamma", None)
        if gamma is not None:
            self.attn.absorb_output_scale(gamma)
        self.layer_scale = nn.Identity()
