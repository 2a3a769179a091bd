"""Print the model table of docs/models.md: our params/MACs, computed now, beside the papers' numbers.

Usage: ``.venv/bin/python benchmarks/model_table.py`` (about 30 s on 2 cores). Paste the output into
docs/models.md. Our columns come from ``count_params`` / ``count_macs`` on freshly built models; the
paper columns are literature constants (the papers' tables, cited below), never derived from our code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mobilebone import create_model, list_models
from mobilebone.analysis import count_macs, count_params


@dataclass(frozen=True)
class Published:
    """What a paper (and, for MNv4, timm's own training) reports for one model."""

    params_m: float
    macs_m: float
    top1: float
    timm_top1: float  # timm's ImageNet-1k top-1 for weights this architecture loads (see PUBLISHED)
    macs_in_g: bool = False  # the paper prints MACs in G with one decimal (MNv4), not in M (MobileOne)

    @property
    def macs_text(self) -> str:
        """MACs as the paper prints them (MNv4 gives one decimal of G, so 0.2 G may mean 150–249 M)."""
        return f"{self.macs_m / 1000:.1f} G" if self.macs_in_g else f"{self.macs_m:,.0f} M"


# MobileOne (Vasu et al. 2023, Table 8; fused network at 224); timm top-1 = timm's evaluation of Apple's
# weights. MobileNetV4 (Qin et al. 2024, Table 5, as transcribed by secondary sources) at its
# paper resolution; timm top-1 = best timm-trained ImageNet-1k checkpoint there. Both
# timm columns come from timm's results-imagenet.csv.
PUBLISHED: dict[str, Published] = {
    "mobileone_s0": Published(2.1, 275, 71.4, 71.398),
    "mobileone_s1": Published(4.8, 825, 75.9, 75.760),
    "mobileone_s2": Published(7.8, 1299, 77.4, 77.504),
    "mobileone_s3": Published(10.1, 1896, 78.1, 78.002),
    "mobileone_s4": Published(14.8, 2978, 79.4, 79.446),
    "mobilenetv4_conv_small": Published(3.8, 200, 73.8, 73.756, macs_in_g=True),
    "mobilenetv4_conv_medium": Published(9.2, 1000, 79.9, 79.916, macs_in_g=True),
    "mobilenetv4_conv_large": Published(31.0, 5900, 82.9, 82.974, macs_in_g=True),
    "mobilenetv4_hybrid_medium": Published(10.5, 1200, 80.7, 81.478, macs_in_g=True),
    "mobilenetv4_hybrid_large": Published(35.9, 7200, 83.4, 83.996, macs_in_g=True),
}


def row(name: str) -> str:
    """One markdown table row for ``name``."""
    train = create_model(name)
    deploy = create_model(name, deploy=True)
    size = int(train.pretrained_cfg["input_size"][-1])
    macs = count_macs(deploy, size)
    attn = sum(n for op, n in macs.by_operator.items() if op.startswith(("bmm", "baddbmm", "matmul")))
    paper = PUBLISHED[name]
    p_train, p_deploy = count_params(train), count_params(deploy)
    # MobileOne's paper counts the reparameterized network; MNv4's counts the network as defined.
    ours_vs_paper = p_deploy if name.startswith("mobileone") else p_train
    # Δ MACs twice: with and without the attention matmuls (the paper does not say which it counts).
    delta_macs = 100 * (macs.total / 1e6 / paper.macs_m - 1)
    delta_conv = 100 * ((macs.total - attn) / 1e6 / paper.macs_m - 1)
    return (
        f"| {name} | {size} | {p_train:,} | {p_deploy:,} | {macs.total / 1e6:,.1f} | {attn / 1e6:,.1f} "
        f"| {paper.params_m:g} M | {paper.macs_text} | {100 * (ours_vs_paper / 1e6 / paper.params_m - 1):+.1f} % "
        f"| {delta_macs:+.1f} % | {delta_conv:+.1f} % | {paper.top1} | {paper.timm_top1:.3f} |"
    )


def main() -> None:
    """Print the table for every registered model."""
    print(
        "| model | input | params (train) | params (deploy) | MMACs (deploy) | of which attention "
        "| paper params | paper MACs | Δ params | Δ MACs | Δ MACs w/o attention | paper top-1 | timm top-1 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with torch.no_grad():
        for name in PUBLISHED:
            if name in list_models():
                print(row(name))


if __name__ == "__main__":
    main()
