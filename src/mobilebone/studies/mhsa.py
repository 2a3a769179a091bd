"""The baseline of the MobileNetV4 attention ablation: standard multi-head self-attention (MHSA).

MNv4 §3.3 compares its Mobile MQA with MHSA (Vaswani et al., 2017, §3.2.2) at the same width: every
query head gets its *own* key and value head instead of sharing one. These modules are the MNv4 ones
(``MultiQueryAttention2d``, ``MobileMQABlock``) with only that changed — same pre-norm, same K/V
down-sampling option, same projections, layer scale, residual, deploy folding and ``attn_impl`` switch
(``set_attention_impl`` finds them as subclasses) — so a latency difference is the K/V heads alone.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from mobilebone.layers.attention import MultiQueryAttention2d
from mobilebone.models.mobilenetv4.blocks import MobileMQABlock


def _widen(proj: object, out_chs: int) -> nn.Conv2d:
    """A fresh 1×1 conv with ``proj``'s input width and bias setting but ``out_chs`` outputs."""
    if not isinstance(proj, nn.Conv2d):
        raise TypeError(
            f"expected the 1x1 projection conv of MultiQueryAttention2d, got {type(proj).__name__}"
        )
    return nn.Conv2d(proj.in_channels, out_chs, 1, bias=proj.bias is not None)


class MultiHeadAttention2d(MultiQueryAttention2d):
    """MHSA on NCHW maps: ``num_heads`` query, key and value heads (K/V projections C → h·d each)."""

    def __init__(self, dim: int, num_heads: int, key_dim: int, value_dim: int, **kwargs: object) -> None:
        super().__init__(dim, num_heads, key_dim, value_dim, **kwargs)  # type: ignore[arg-type]
        self.key.proj = _widen(self.key.proj, num_heads * key_dim)
        self.value.proj = _widen(self.value.proj, num_heads * value_dim)

    def forward(self, x: Tensor, x_kv: Tensor | None = None) -> Tensor:
        """Attend per head from every position of ``x`` to every (reduced) position of ``x_kv``."""
        x_kv = x if x_kv is None else x_kv
        batch, _, height, width = x.shape
        h = self.num_heads
        # (B, h·d, H, W) → (B, h, d, N) → (B, h, N, d); unlike MQA, K and V have h heads too.
        q = self.query(x).reshape(batch, h, self.key_dim, -1).transpose(-1, -2)
        k = self.key(x_kv).reshape(batch, h, self.key_dim, -1).transpose(-1, -2)
        v = self.value(x_kv).reshape(batch, h, self.value_dim, -1).transpose(-1, -2)
        if self.attn_impl == "sdpa":
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * (1.0 / math.sqrt(self.key_dim))) @ k.transpose(-1, -2)  # (B, h, N, M)
            o = attn.softmax(dim=-1) @ v
        o = o.transpose(-1, -2).reshape(batch, h * self.value_dim, height, width)
        return self.output(o)


class MultiHeadAttentionBlock(MobileMQABlock):
    """``MobileMQABlock`` with ``MultiHeadAttention2d`` in place of multi-query attention."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        *,
        kv_stride: int = 1,
        layer_scale: float | None = None,
        attn_impl: str = "sdpa",
    ) -> None:
        super().__init__(
            dim,
            num_heads,
            key_dim,
            value_dim,
            kv_stride=kv_stride,
            layer_scale=layer_scale,
            attn_impl=attn_impl,
        )
        self.attn = MultiHeadAttention2d(
            dim, num_heads, key_dim, value_dim, kv_stride=kv_stride, attn_impl=attn_impl
        )
