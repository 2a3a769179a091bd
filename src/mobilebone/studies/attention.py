"""The MobileNetV4 ablations (Qin et al. 2024, MNv4 §3.2-3.3): Mobile MQA vs MHSA, K/V down-sampling, UIB forms.

Each case is a stack of ``DEPTH`` identical blocks on the feature map a hybrid's attention stage sees
(4 attention blocks per stage in Hybrid-M/L): at the paper resolutions Hybrid-M attends on 16×16×160
(stride 16, 4 heads × 64, K/V stride 2 in the model) and 8×8×256 (stride 32, 4 × 64, K/V stride 1);
Hybrid-L on 24×24×192 (8 × 48) and 12×12×512 (8 × 64). Every attention setting is timed with MQA and
MHSA, each with and without K/V down-sampling. The UIB forms are compared at one width and expansion
(×4, 3×3 depthwise kernels) on the Hybrid-M stride-16 and stride-32 maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from torch import Tensor, nn

from mobilebone.layers.activations import create_activation
from mobilebone.models.mobilenetv4.blocks import MobileMQABlock, UniversalInvertedBottleneck
from mobilebone.studies.mhsa import MultiHeadAttentionBlock
from mobilebone.studies.run import StudyCase

TITLE = "Mobile MQA vs multi-head attention, K/V down-sampling, and the four UIB forms"
DEPTH = 4
LAYER_SCALE = 1e-5  # as in the hybrids (timm's MobileNetV4 hybrid definitions: layer_scale_init_value 1e-5); folded away in the deploy form
UIB_EXPAND = 4
# (start-DW kernel, middle-DW kernel) of each UIB form (MNv4 §3.1, the four UIB instantiations).
UIB_FORMS = {"extra_dw": (3, 3), "convnext": (3, 0), "ib": (0, 3), "ffn": (0, 0)}
UIB_TEXT = {
    "extra_dw": "ExtraDW: 3×3 DW → 1×1 expand → 3×3 DW → 1×1 project",
    "convnext": "ConvNext-like: 3×3 DW → 1×1 expand → 1×1 project",
    "ib": "IB (MobileNetV2): 1×1 expand → 3×3 DW → 1×1 project",
    "ffn": "FFN: 1×1 expand → 1×1 project",
}


@dataclass(frozen=True)
class AttentionSetting:
    """One attention stage of a hybrid: which model, image side, stride, channels, heads × head dim."""

    variant: str
    resolution: int
    stride: int
    channels: int
    num_heads: int
    head_dim: int

    def grid(self, resolution: int | None = None) -> int:
        """Side of the token grid at ``resolution`` (default: the paper's)."""
        return max(1, (resolution or self.resolution) // self.stride)

    def label(self, resolution: int | None = None) -> str:
        """E.g. "Hybrid-M s16: 16×16×160, 4×64"."""
        g = self.grid(resolution)
        return f"{self.variant} s{self.stride}: {g}×{g}×{self.channels}, {self.num_heads}×{self.head_dim}"


SETTINGS = (
    AttentionSetting("Hybrid-M", 256, 16, 160, 4, 64),
    AttentionSetting("Hybrid-M", 256, 32, 256, 4, 64),
    AttentionSetting("Hybrid-L", 384, 16, 192, 8, 48),
    AttentionSetting("Hybrid-L", 384, 32, 512, 8, 64),
)


class BlockStack(nn.Module):
    """``DEPTH`` blocks on a ``(B, C, H, W)`` feature map; ``in_chans`` = C so exporters shape its input."""

    def __init__(self, blocks: list[nn.Module], channels: int) -> None:
        super().__init__()
        self.in_chans = channels
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


def attention_stack(kind: str, setting: AttentionSetting, kv_stride: int) -> BlockStack:
    """``DEPTH`` Mobile-MQA (``kind="mqa"``) or MHSA (``"mhsa"``) blocks at ``setting``'s width."""
    block = MobileMQABlock if kind == "mqa" else MultiHeadAttentionBlock
    c, h, d = setting.channels, setting.num_heads, setting.head_dim
    blocks: list[nn.Module] = [
        block(c, h, d, d, kv_stride=kv_stride, layer_scale=LAYER_SCALE) for _ in range(DEPTH)
    ]
    return BlockStack(blocks, c)


def uib_stack(form: str, channels: int) -> BlockStack:
    """``DEPTH`` residual UIB blocks of ``form`` (a key of ``UIB_FORMS``), expand ×4, ReLU."""
    start, mid = UIB_FORMS[form]
    hidden = channels * UIB_EXPAND

    def relu() -> nn.Module:
        return create_activation("relu", hidden)

    blocks: list[nn.Module] = [
        UniversalInvertedBottleneck(channels, channels, start, mid, 1, hidden, relu, layer_scale=LAYER_SCALE)
        for _ in range(DEPTH)
    ]
    return BlockStack(blocks, channels)


def cases(input_size: int | None = None, batch_size: int = 1) -> list[StudyCase]:
    """MQA/MHSA × K/V stride 1/2 for every ``SETTINGS`` entry, then the UIB forms on Hybrid-M's maps.

    ``input_size`` is the *image* side the maps derive from (default: each variant's paper resolution).
    """
    out: list[StudyCase] = []
    for s in SETTINGS:
        g, group = s.grid(input_size), s.label(input_size)
        for kv_stride in (1, 2):
            for kind in ("mhsa", "mqa"):
                heads = "1 shared K/V head" if kind == "mqa" else f"{s.num_heads} K/V heads"
                down = "K/V down-sampled by a stride-2 3×3 DW conv" if kv_stride == 2 else "full-size K/V"
                out.append(
                    StudyCase(
                        name=f"{kind}{'_kv2' if kv_stride == 2 else ''} [{s.variant} s{s.stride}]",
                        build=partial(attention_stack, kind, s, kv_stride),
                        input_shape=(batch_size, s.channels, g, g),
                        group=group,
                        description=f"{DEPTH} × {kind.upper()} block, {s.num_heads} query heads × "
                        f"{s.head_dim}, {heads}, {down}",
                        paper=_attention_paper(kind, kv_stride, s),
                    )
                )
    for s in SETTINGS[:2]:
        g = s.grid(input_size)
        for form, text in UIB_TEXT.items():
            out.append(
                StudyCase(
                    name=f"uib_{form} [{s.variant} s{s.stride}]",
                    build=partial(uib_stack, form, s.channels),
                    input_shape=(batch_size, s.channels, g, g),
                    group=f"UIB {g}×{g}×{s.channels}, ×{UIB_EXPAND}",
                    description=f"{DEPTH} × {text}",
                )
            )
    return out


def _attention_paper(kind: str, kv_stride: int, s: AttentionSetting) -> str:
    """What MNv4 reports for this comparison (MNv4 §3.2-3.3, as transcribed by secondary sources)."""
    if kind == "mqa" and kv_stride == 1 and s.stride == 32:
        return "MQA vs MHSA: −39 % attention time (Pixel 8 EdgeTPU), −41 % (S23 GPU) [2nd]"
    if kind == "mqa" and kv_stride == 2 and s.variant == "Hybrid-M" and s.stride == 16:
        return "K/V down-sampling, whole Hybrid-M: S23 CPU 15.8 → 12.8 ms, GPU 7.4 → 5.9 ms [2nd]"
    return ""
