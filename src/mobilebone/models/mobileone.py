"""MobileOne S0–S4 (Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone", CVPR 2023).

Stem unit (3×3 dense, stride 2), then four stages of 2 / 8 / 10 / 1 blocks, each block a depthwise 3×3
unit followed by a pointwise 1×1 unit (paper §3.2 and Table 7), then global pool and a linear classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from mobilebone.layers import ClassifierHead
from mobilebone.models.contract import Backbone, FeatureInfo, FeatureInfoList, last_stage_stride_dilation
from mobilebone.models.mobileone_block import MobileOneBlock

BASE_WIDTHS = (64, 128, 256, 512)
DEPTHS = (2, 8, 10, 1)  # blocks per stage; the paper's stages 4 and 5 (5 + 5 blocks) form stage 3 here


@dataclass(frozen=True)
class MobileOneSpec:
    """A MobileOne variant (paper Table 7): width multipliers, branch count k, SE."""

    width_multipliers: tuple[float, float, float, float]
    num_conv_branches: int = 1
    se_blocks: tuple[int, int, int, int] = (0, 0, 0, 0)  # trailing blocks of each stage that carry SE

    def widths(self) -> tuple[int, ...]:
        """Output channels of the four stages: int(base × α)."""
        return tuple(int(base * a) for base, a in zip(BASE_WIDTHS, self.width_multipliers, strict=True))

    def stem_width(self) -> int:
        """Stem channels: min(64, int(64 · α1))."""
        return min(64, int(64 * self.width_multipliers[0]))


SPECS: dict[str, MobileOneSpec] = {
    "s0": MobileOneSpec((0.75, 1.0, 1.0, 2.0), num_conv_branches=4),
    "s1": MobileOneSpec((1.5, 1.5, 2.0, 2.5)),
    "s2": MobileOneSpec((1.5, 2.0, 2.5, 4.0)),
    "s3": MobileOneSpec((2.0, 2.5, 3.0, 4.0)),
    # S4: SE on the last 5 blocks of stage 3 and the single block of stage 4 (both units of each block).
    "s4": MobileOneSpec((3.0, 3.5, 3.5, 4.0), se_blocks=(0, 0, 5, 1)),
}


class MobileOne(Backbone):
    """MobileOne network. ``deploy=True`` builds the reparameterized (deploy) graph directly.

    ``output_stride=16`` builds the last stage at stride 1 with its 3×3 units dilated by 2 (for DeepLabV3 /
    LR-ASPP); the parameters, and so the checkpoints, are those of the stride-32 network.
    """

    def __init__(
        self,
        spec: MobileOneSpec,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        deploy: bool = False,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        global_pool: str = "avg",
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        _, last_dilation = last_stage_stride_dilation(output_stride)
        self.output_stride = output_stride
        self.spec = spec
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.drop_path_rate = drop_path_rate
        stem_chs = spec.stem_width()
        # The stem always has a single conv branch, even for S0 (k = 4 elsewhere), as Apple's code.
        self.stem = MobileOneBlock(in_chans, stem_chs, 3, stride=2, deploy=deploy)
        self.feature_info = FeatureInfoList([FeatureInfo(stem_chs, 2, "stem")])

        total_units = 2 * sum(DEPTHS)
        unit_index = 0
        in_chs = stem_chs
        stages = []
        reduction = 2
        for stage_idx, (depth, out_chs) in enumerate(zip(DEPTHS, spec.widths(), strict=True)):
            # output_stride=16: the last stage's units are dilated, its stride-2 unit runs at stride 1.
            dilation = last_dilation if stage_idx == len(DEPTHS) - 1 else 1
            reduction *= 2 if dilation == 1 else 1
            units: list[nn.Module] = []
            for block_idx in range(depth):
                use_se = block_idx >= depth - spec.se_blocks[stage_idx]
                stride = 2 if block_idx == 0 else 1
                for kernel, groups, unit_out in ((3, in_chs, in_chs), (1, 1, out_chs)):
                    units.append(
                        MobileOneBlock(
                            in_chs,
                            unit_out,
                            kernel,
                            stride=stride if kernel == 3 else 1,
                            groups=groups,
                            num_conv_branches=spec.num_conv_branches,
                            use_se=use_se,
                            deploy=deploy,
                            drop_path_rate=drop_path_rate * unit_index / max(total_units - 1, 1),
                            dilation=dilation if kernel > 1 else 1,
                        )
                    )
                    unit_index += 1
                in_chs = out_chs
            stages.append(nn.Sequential(*units))
            self.feature_info.append(FeatureInfo(out_chs, reduction, f"stages.{stage_idx}"))
        self.stages = nn.Sequential(*stages)
        self.num_features = in_chs
        self.head_hidden_size = in_chs  # no head conv: the pooled vector has the feature map's width
        self.stage_ends = list(range(len(self.feature_info)))  # level k = output of k stages
        self.head = ClassifierHead(in_chs, num_classes, drop_rate, global_pool)

    paper_ids = "arXiv:2206.04040"
    weights_license = "mobileone-license"  # Apple's licence of the published weights (timm's cfg)

    def first_conv_name(self) -> str | tuple[str, ...]:
        """Train-time: the stem's k×k and 1×1 branch convs (timm's value); fused: the one conv."""
        if self.stem.reparam_conv is not None:
            return "stem.reparam_conv"
        return ("stem.conv_kxk.0.conv", "stem.conv_scale.conv")

    def classifier_name(self) -> str:
        """``head.fc``."""
        return "head.fc"

    def stage_modules(self) -> nn.Sequential:
        """The four stages (strides 4, 8, 16, 32)."""
        return self.stages

    def _set_stage_modules(self, stages: nn.Sequential) -> None:
        self.stages = stages

    def _stage_prefix(self) -> str:
        return "stages."

    def _prune_head(self, num_chs: int, prune_end: bool) -> None:
        self.head_hidden_size = num_chs
        self.head = ClassifierHead(num_chs, 0, global_pool="")
        self.num_classes = 0
        self.pruned_prefixes += ("head.",)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Global pool and classify (or return the pooled features when ``pre_logits``)."""
        return self.head(x, pre_logits=pre_logits)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier for ``num_classes`` outputs (0 leaves the pooled features)."""
        self.head.reset(num_classes, global_pool)
        self.num_classes = num_classes

    def get_classifier(self) -> nn.Module:
        """The linear classifier (``nn.Identity`` without classes)."""
        return self.head.fc

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Stem, then stages (coarse) or units (fine); the head falls in the last group (timm's rule)."""
        return {"stem": r"^stem", "blocks": r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)"}


def build(variant: str, **kwargs: Any) -> MobileOne:
    """MobileOne-``variant`` (``s0``…``s4``; fused params and MACs as the paper's Table 8)."""
    return MobileOne(SPECS[variant], **kwargs)
