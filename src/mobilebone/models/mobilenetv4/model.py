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
from mobilebone.layers.classifier import check_pool_classes, make_global_pool
from mobilebone.layers.conv_norm_act import ActFactory
from mobilebone.models.contract import Backbone, FeatureInfo, FeatureInfoList, last_stage_stride_dilation
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
    """MobileNetV4 built from a ``MobileNetV4Spec``; ``deploy=True`` builds the deploy graph.

    ``output_stride=16`` runs ``blocks.3`` (the stride-32 stage) at stride 1 with its depthwise / k×k convs
    dilated by 2 (for DeepLabV3 / LR-ASPP); parameters and checkpoints are those of the stride-32 network.
    Its Mobile-MQA blocks attend globally with no K/V down-sampling, so dilation leaves them as they are.
    """

    def __init__(
        self,
        spec: MobileNetV4Spec,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        deploy: bool = False,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        attn_impl: str = "sdpa",
        global_pool: str = "avg",
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        check_attn_impl(attn_impl)
        _, last_dilation = last_stage_stride_dilation(output_stride)
        self.output_stride = output_stride
        self.spec = spec
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.drop_path_rate = drop_path_rate
        act = _ACTS[spec.act]
        fused = deploy
        self.stem = ConvNormAct(in_chans, spec.stem_chs, 3, 2, act_layer=act, fused=fused)
        self.feature_info = FeatureInfoList([FeatureInfo(spec.stem_chs, 2, "stem")])

        # Stochastic depth grows linearly with the block index over all blocks (timm's schedule).
        total = sum(len(stage) for stage in spec.stages)
        index = 0
        in_chs = spec.stem_chs
        stages = []
        reduction = 2
        for stage_idx, stage_spec in enumerate(spec.stages):
            dilation = last_dilation if stage_idx == 3 else 1  # blocks.3: the stride-32 stage
            reduction *= 2 if stage_idx < 4 and dilation == 1 else 1
            blocks = []
            for block_spec in stage_spec:
                rate = drop_path_rate * index / total
                blocks.append(self._block(block_spec, in_chs, act, fused, rate, attn_impl, dilation))
                in_chs = block_spec.out_chs if not isinstance(block_spec, MQASpec) else in_chs
                index += 1
            stages.append(nn.Sequential(*blocks))
            # Levels: stride 4, 8, 16 after blocks.0–2; blocks.3 and blocks.4 share stride 32, and the
            # level is the 960-channel output of blocks.4 (timm's feature_info does the same).
            if stage_idx != 3:
                self.feature_info.append(FeatureInfo(in_chs, reduction, f"blocks.{stage_idx}"))
        self.blocks = nn.Sequential(*stages)
        self.stage_ends = [0, 1, 2, 3, 5]  # level k = output of this many stages (blocks.3 has no level)
        # timm's convention: num_features = channels of forward_features (960), head_hidden_size = width of
        # the pooled vector after conv_head that the classifier reads (forward_head(pre_logits=True), 1280).
        self.num_features = in_chs
        self.head_hidden_size = spec.head_chs
        self.pool_type = global_pool
        self.global_pool: nn.Module = nn.Identity()
        self.conv_head: nn.Module = ConvNormAct(in_chs, spec.head_chs, 1, act_layer=act, fused=fused)
        self.flatten: nn.Module = nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.classifier: nn.Module = nn.Identity()
        self.reset_classifier(num_classes, global_pool)
        if not deploy:
            self._init_weights()

    def _block(
        self,
        spec: BlockSpec,
        in_chs: int,
        act: ActFactory,
        fused: bool,
        drop_path: float,
        attn_impl: str,
        dilation: int = 1,
    ) -> nn.Module:
        if isinstance(spec, ConvSpec):
            stride = 1 if dilation > 1 else spec.stride
            return ConvNormAct(
                in_chs, spec.out_chs, spec.kernel, stride, act_layer=act, fused=fused, dilation=dilation
            )
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
                dilation=dilation,
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
                dilation=dilation,
            )
        if dilation > 1 and spec.kv_stride > 1:
            # The K/V down-sampling conv would halve the dilated stage's maps; no MNv4 variant has one there.
            raise ValueError(
                "output_stride=16 is not supported: the last stage has a K/V-strided attention block"
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

    paper_ids = "arXiv:2404.10518"
    weights_license = "apache-2.0"  # timm's published MNv4 weights

    def first_conv_name(self) -> str:
        """``stem.conv`` (timm's ``conv_stem``)."""
        return "stem.conv"

    def classifier_name(self) -> str:
        """``classifier``."""
        return "classifier"

    def stage_modules(self) -> nn.Sequential:
        """``blocks.0`` … ``blocks.4``."""
        return self.blocks

    def _set_stage_modules(self, stages: nn.Sequential) -> None:
        self.blocks = stages

    def _stage_prefix(self) -> str:
        return "blocks."

    def _prune_head(self, num_chs: int, prune_end: bool) -> None:
        # The 960 → 1280 conv is part of the head (timm's prune does the same): features_only never uses it.
        self.conv_head = nn.Identity()
        self.head_hidden_size = num_chs
        self.pruned_prefixes += ("conv_head.", "classifier.")
        self.reset_classifier(0, "")

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool, 1×1 conv to 1280 (+BN+act), flatten, dropout, classify (or stop at the 1280-vector).

        Pooling before ``conv_head`` is MNv4's efficient head (paper §4); with ``global_pool=""`` the conv
        runs on every position and the 1280-channel map is returned (timm's behaviour).
        """
        x = self.flatten(self.conv_head(self.global_pool(x)))
        x = self.drop(x)
        return x if pre_logits else self.classifier(x)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier for ``num_classes`` outputs (0 leaves the 1280-d pooled features)."""
        pool = self.pool_type if global_pool is None else global_pool
        check_pool_classes(num_classes, pool)
        self.pool_type = pool
        # The pool keeps (N, C, 1, 1) so conv_head (a 1×1 conv) can follow it; flatten comes after.
        self.global_pool = make_global_pool(pool, flatten=False)
        self.flatten = nn.Flatten(1) if pool else nn.Identity()
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        """The linear classifier (``nn.Identity`` without classes)."""
        return self.classifier

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Stem, then stages (coarse) or blocks (fine); conv_head and classifier fall in the last group."""
        return {"stem": r"^stem", "blocks": r"^blocks\.(\d+)" if coarse else r"^blocks\.(\d+)\.(\d+)"}


def build(variant: str, **kwargs: Any) -> MobileNetV4:
    """MobileNetV4 ``variant`` (a key of ``SPECS``; keyword arguments as ``MobileNetV4``)."""
    return MobileNetV4(SPECS[variant], **kwargs)
