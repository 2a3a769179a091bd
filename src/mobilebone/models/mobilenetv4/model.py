"""The MobileNetV4 network (Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem", ECCV 2024).

stem (3×3 s2 conv) → ``blocks.0`` … ``blocks.3`` (strides 4, 8, 16, 32) → ``blocks.4`` (1×1 → 960)
→ global average pool → ``conv_head`` (1×1 960 → 1280, BN, act) → flatten → dropout → ``classifier``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from mobilebone.layers import ConvNormAct, make_divisible
from mobilebone.layers.attention import MultiQueryAttention2d, check_attn_impl
from mobilebone.layers.conv_norm_act import ActFactory
from mobilebone.models.contract import Backbone, FeatureInfo, check_input
from mobilebone.models.mobilenetv4.blocks import FusedIB, MobileMQABlock, UniversalInvertedBottleneck
from mobilebone.models.mobilenetv4.specs import (
    SPECS,
    BlockSpec,
    ConvSpec,
    FusedIBSpec,
    MobileNetV4Spec,
    MQASpec,
    UIBSpec,
)

_ACTS: dict[str, ActFactory] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "gelu": nn.GELU,  # exact (erf) GELU, as TF and timm for Hybrid-L
}


def _expanded(in_chs: int, expand: float) -> int:
    """Hidden width ``make_divisible(in × expand, 8)``: every MNv4 product is already a multiple of 8."""
    return make_divisible(in_chs * expand, 8)


class MobileNetV4(Backbone):
    """MobileNetV4 built from a ``MobileNetV4Spec``; ``inference_mode=True`` builds the deploy graph."""

    def __init__(
        self,
        spec: MobileNetV4Spec,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        inference_mode: bool = False,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        attn_impl: str = "sdpa",
    ) -> None:
        super().__init__()
        check_attn_impl(attn_impl)
        self.spec = spec
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.drop_path_rate = drop_path_rate
        act = _ACTS[spec.act]
        fused = inference_mode
        self.stem = ConvNormAct(in_chans, spec.stem_chs, 3, 2, act_layer=act, fused=fused)
        self.feature_info = [FeatureInfo(spec.stem_chs, 2, "stem")]

        # Stochastic depth grows linearly with the block index over all blocks (timm's schedule).
        total = sum(len(stage) for stage in spec.stages)
        index = 0
        in_chs = spec.stem_chs
        stages = []
        for stage_idx, stage_spec in enumerate(spec.stages):
            blocks = []
            for block_spec in stage_spec:
                rate = drop_path_rate * index / total
                blocks.append(self._block(block_spec, in_chs, act, fused, rate, attn_impl))
                in_chs = block_spec.out_chs if not isinstance(block_spec, MQASpec) else in_chs
                index += 1
            stages.append(nn.Sequential(*blocks))
            # Levels: stride 4, 8, 16 after blocks.0–2; blocks.3 and blocks.4 share stride 32, and the
            # level is the 960-channel output of blocks.4 (timm's feature_info does the same).
            if stage_idx != 3:
                self.feature_info.append(
                    FeatureInfo(in_chs, 2 ** (min(stage_idx, 3) + 2), f"blocks.{stage_idx}")
                )
        self.blocks = nn.Sequential(*stages)
        # timm's convention: num_features = channels of forward_features (960), head_hidden_size = width of
        # the pooled vector after conv_head that the classifier reads (forward_head(pre_logits=True), 1280).
        self.num_features = in_chs
        self.head_hidden_size = spec.head_chs
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = ConvNormAct(in_chs, spec.head_chs, 1, act_layer=act, fused=fused)
        self.flatten = nn.Flatten(1)
        self.drop = nn.Dropout(drop_rate)
        self.classifier: nn.Module = nn.Identity()
        self.reset_classifier(num_classes)
        if not inference_mode:
            self._init_weights()

    def _block(
        self, spec: BlockSpec, in_chs: int, act: ActFactory, fused: bool, drop_path: float, attn_impl: str
    ) -> nn.Module:
        if isinstance(spec, ConvSpec):
            return ConvNormAct(in_chs, spec.out_chs, spec.kernel, spec.stride, act_layer=act, fused=fused)
        if isinstance(spec, FusedIBSpec):
            mid = _expanded(in_chs, spec.expand)
            return FusedIB(
                in_chs,
                spec.out_chs,
                spec.kernel,
                spec.stride,
                mid,
                act,
                fused=fused,
                drop_path_rate=drop_path,
            )
        if isinstance(spec, UIBSpec):
            return UniversalInvertedBottleneck(
                in_chs,
                spec.out_chs,
                spec.start_dw,
                spec.mid_dw,
                spec.stride,
                _expanded(in_chs, spec.expand),
                act,
                layer_scale=self.spec.layer_scale,
                fused=fused,
                drop_path_rate=drop_path,
            )
        return MobileMQABlock(
            in_chs,
            spec.num_heads,
            spec.key_dim,
            spec.value_dim,
            kv_stride=spec.kv_stride,
            layer_scale=self.spec.layer_scale,
            fused=fused,
            attn_impl=attn_impl,
            drop_path_rate=drop_path,
        )

    @torch.no_grad()
    def _init_weights(self) -> None:
        # TF/timm MobileNet init: conv ~ N(0, 2 / fan_out) with fan_out = k² · C_out / groups; linear
        # ~ U(±1/√C_out); attention projections Xavier-uniform (timm's choice for the hybrids).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.weight.shape[0])
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, MultiQueryAttention2d):
                module.init_weights()

    def forward_levels(self, x: Tensor) -> list[Tensor]:
        """Outputs at strides 2, 4, 8, 16, 32 (the last one is the 960-channel input of the head)."""
        check_input(x, self.in_chans)
        x = self.stem(x)
        levels = [x]
        for stage_idx, stage in enumerate(self.blocks):
            x = stage(x)
            if stage_idx != 3:
                levels.append(x)
        return levels

    def forward_features(self, x: Tensor) -> Tensor:
        """The stride-32, 960-channel map that feeds the head."""
        check_input(x, self.in_chans)
        return self.blocks(self.stem(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool, 1×1 conv to 1280 (+BN+act), flatten, dropout, classify (or stop at the 1280-vector)."""
        x = self.flatten(self.conv_head(self.global_pool(x)))
        x = self.drop(x)
        return x if pre_logits else self.classifier(x)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier for ``num_classes`` outputs (0 leaves the 1280-d pooled features)."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()


def build(variant: str, **kwargs: Any) -> MobileNetV4:
    """MobileNetV4 ``variant`` (a key of ``SPECS``; keyword arguments as ``MobileNetV4``)."""
    return MobileNetV4(SPECS[variant], **kwargs)
