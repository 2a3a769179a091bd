"""Mobile multi-query attention (MobileNetV4 §3.3; timm ``attention2d.py``): many query heads, one shared K and V.

Query: a 1×1 projection to ``num_heads × key_dim`` channels (one projection per head). Key and value: a single
head each (``key_dim`` / ``value_dim`` channels), optionally computed on a map spatially reduced by a
stride-2 depthwise 3×3 conv + BN (``kv_stride=2``, used in the stride-16 stage). Heads are concatenated
(channel = head·value_dim + i, timm's layout) and projected back by a 1×1 conv. No biases at train time.

Two numerically equivalent paths, chosen by ``attn_impl``: ``"sdpa"``
(``torch.nn.functional.scaled_dot_product_attention``) and ``"matmul"`` (explicit softmax(QKᵀ/√d)V,
friendlier to exporters). ``set_attention_impl`` switches every attention module of a model.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mobilebone.layers.conv_norm_act import conv_with_weights
from mobilebone.reparam.fuse import fold_affine_into_conv1x1, fuse_conv_bn, scale_conv_output

ATTN_IMPLS = ("sdpa", "matmul")


def check_attn_impl(impl: str) -> str:
    """Return ``impl`` if it names an attention path, else raise a one-line ``ValueError``."""
    if impl not in ATTN_IMPLS:
        raise ValueError(f"attn_impl must be one of {', '.join(ATTN_IMPLS)}; got {impl!r}")
    return impl


class MultiQueryAttention2d(nn.Module):
    """Multi-query attention on NCHW maps; ``fused=True`` builds the deploy form (no BatchNorm).

    Train-time keys (equal to timm's ``MultiQueryAttention2d``): ``query.proj``, ``key.down_conv``,
    ``key.norm``, ``key.proj``, ``value.*`` likewise, ``output.proj``. Deploy form: the down-convs carry
    their folded BN as a bias; the projections get the biases of a folded input affine (see ``absorb_*``).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        *,
        kv_stride: int = 1,
        dw_kernel_size: int = 3,
        fused: bool = False,
        attn_impl: str = "sdpa",
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if kv_stride not in (1, 2):
            raise ValueError(f"kv_stride must be 1 or 2, got {kv_stride}")
        self.num_heads, self.key_dim, self.value_dim = num_heads, key_dim, value_dim
        self.kv_stride = kv_stride
        self.attn_impl = check_attn_impl(attn_impl)
        # Deploy form: the pre-norm is folded into the projections that read the block input directly
        # (query always; key/value only without down-sampling), which then need a bias.
        direct_kv_bias = fused and kv_stride == 1
        self.query = nn.Sequential(OrderedDict(proj=nn.Conv2d(dim, num_heads * key_dim, 1, bias=fused)))
        self.key = self._kv_branch(dim, key_dim, dw_kernel_size, bn_eps, fused, direct_kv_bias)
        self.value = self._kv_branch(dim, value_dim, dw_kernel_size, bn_eps, fused, direct_kv_bias)
        self.output = nn.Sequential(OrderedDict(proj=nn.Conv2d(num_heads * value_dim, dim, 1, bias=False)))

    def _kv_branch(
        self, dim: int, out_dim: int, kernel: int, bn_eps: float, fused: bool, proj_bias: bool
    ) -> nn.Sequential:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if self.kv_stride > 1:
            # Spatial reduction of K/V (MNv4 §3.3): depthwise k×k stride 2 + BN, no activation.
            layers["down_conv"] = nn.Conv2d(
                dim, dim, kernel, self.kv_stride, kernel // 2, groups=dim, bias=fused
            )
            layers["norm"] = nn.Identity() if fused else nn.BatchNorm2d(dim, eps=bn_eps)
        layers["proj"] = nn.Conv2d(dim, out_dim, 1, bias=proj_bias)
        return nn.Sequential(layers)

    @property
    def fused(self) -> bool:
        """True in the deploy form (what ``fused=True`` builds): K/V BNs folded *and* the input affine absorbed.

        Read from the modules, not stored: ``reparameterize`` alone leaves the pre-norm of the enclosing block
        to be absorbed (``absorb_input_affine``), and until then the query projection has no bias.
        """
        has_bn = any(isinstance(m, nn.BatchNorm2d) for m in self.modules())
        return not has_bn and _conv(self.query, "proj").bias is not None

    @torch.no_grad()
    def init_weights(self) -> None:
        """Xavier-uniform projections, as timm's MNv4 hybrids (trains more stably than fan-out normal)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)

    def forward(self, x: Tensor, x_kv: Tensor | None = None) -> Tensor:
        """Attend from every position of ``x`` to the (reduced) positions of ``x_kv`` (default ``x``)."""
        x_kv = x if x_kv is None else x_kv
        batch, _, height, width = x.shape
        # (B, h·dk, H, W) → (B, h, dk, N) → (B, h, N, dk)
        q = self.query(x).reshape(batch, self.num_heads, self.key_dim, -1).transpose(-1, -2)
        # One shared head: (B, dk, Hk, Wk) → (B, 1, M, dk); broadcast over the query heads.
        k = self.key(x_kv).reshape(batch, 1, self.key_dim, -1).transpose(-1, -2)
        v = self.value(x_kv).reshape(batch, 1, self.value_dim, -1).transpose(-1, -2)
        if self.attn_impl == "sdpa":
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            # The one K/V head serves every query head, so the heads fold into the query positions: plain
            # ``bmm`` with nothing to broadcast (``@`` exports as expand + bmm, and XNNPACK does not take the
            # expand), and no shape arithmetic (Core ML's traced conversion does not take an int op).
            q2 = q.reshape(batch, -1, self.key_dim) * (1.0 / math.sqrt(self.key_dim))  # (B, h·N, dk)
            attn = torch.bmm(q2, k.reshape(batch, -1, self.key_dim).transpose(-1, -2))  # (B, h·N, M)
            o = torch.bmm(attn.softmax(dim=-1), v.reshape(batch, -1, self.value_dim))  # (B, h·N, dv)
            o = o.reshape(batch, self.num_heads, -1, self.value_dim)  # (B, h, N, dv)
        # (B, h, N, dv) → (B, h, dv, N) → (B, h·dv, H, W): channel = head·dv + i
        o = o.transpose(-1, -2).reshape(batch, self.num_heads * self.value_dim, height, width)
        return self.output(o)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the BatchNorms after the K/V down-convs into those convs; a no-op when already fused."""
        for branch in (self.key, self.value):
            norm = getattr(branch, "norm", None)
            if not isinstance(norm, nn.BatchNorm2d):
                continue
            conv = _conv(branch, "down_conv")
            weight, bias = fuse_conv_bn(conv.weight, conv.bias, norm)
            branch.down_conv = _refit(conv, weight, bias)
            branch.norm = nn.Identity()

    @torch.no_grad()
    def absorb_input_affine(self, scale: Tensor, shift: Tensor) -> bool:
        """Fold a per-channel affine applied to the block input into the 1×1 projections that read it.

        Returns ``True`` when the K/V path reads the input through padded down-convs, where the affine
        cannot be folded exactly; the caller must then apply it explicitly to the K/V input.
        """
        branches = [self.query] if self.kv_stride > 1 else [self.query, self.key, self.value]
        for branch in branches:
            conv = _conv(branch, "proj")
            weight, bias = fold_affine_into_conv1x1(conv.weight, conv.bias, scale, shift)
            branch.proj = _refit(conv, weight, bias)
        return self.kv_stride > 1

    @torch.no_grad()
    def absorb_output_scale(self, scale: Tensor) -> None:
        """Fold a per-channel multiplier of the attention output (layer scale γ) into the output projection."""
        conv = _conv(self.output, "proj")
        weight, bias = scale_conv_output(conv.weight, conv.bias, scale)
        self.output.proj = _refit(conv, weight, bias)

    def extra_repr(self) -> str:
        return (
            f"heads={self.num_heads}, key_dim={self.key_dim}, value_dim={self.value_dim}, "
            f"kv_stride={self.kv_stride}, attn_impl={self.attn_impl!r}"
        )


def _conv(parent: nn.Module, name: str) -> nn.Conv2d:
    """The Conv2d child ``name`` of ``parent`` (a ``TypeError`` if it is anything else)."""
    conv = getattr(parent, name)
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"expected {name!r} to be a Conv2d, got {type(conv).__name__}")
    return conv


def _refit(conv: nn.Conv2d, weight: Tensor, bias: Tensor | None) -> nn.Conv2d:
    """``conv``'s stride, padding, groups and dilation with new ``weight`` and ``bias``."""
    return conv_with_weights(
        weight, bias, stride=conv.stride, padding=conv.padding, groups=conv.groups, dilation=conv.dilation
    )


def set_attention_impl(model: nn.Module, impl: str) -> int:
    """Switch every Mobile-MQA module of ``model`` to ``impl`` ("sdpa" or "matmul"); return how many."""
    check_attn_impl(impl)
    count = 0
    for module in model.modules():
        if isinstance(module, MultiQueryAttention2d):
            module.attn_impl = impl
            count += 1
    return count
