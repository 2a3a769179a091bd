"""MobileOne S0–S4 in the registry: metadata, eval config and Apple's weights (torch-free; the network is
in ``mobileone.py``).

Weights: Apple's ImageNet-1k checkpoints (github.com/apple/ml-mobileone), renamed by timm and published as
``timm/mobileone_sX.apple_in1k``. timm evaluates S0 at crop 0.875 and S1–S4 at 0.9 (timm ``byobnet.py``
default_cfgs, which also give the license). Top-1 is timm's evaluation of these weights at 224 px
(timm ``results/results-imagenet.csv``); Apple's README reports 71.4 / 75.9 / 77.4 / 78.1 / 79.4.
"""

from __future__ import annotations

from mobilebone.registry import ModelEntry, PretrainedTag, default_cfg, register

PAPER = "arXiv:2206.04040"  # Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone"
_CONVERTERS = {
    "apple": "mobilebone.checkpoints.formats.apple:to_mobilebone",
    "timm": "mobilebone.checkpoints.formats.timm:mobileone_to_mobilebone",
}
_TOP1 = {"s0": 71.398, "s1": 75.760, "s2": 77.504, "s3": 78.002, "s4": 79.446}

for _variant, _top1 in _TOP1.items():
    _name = f"mobileone_{_variant}"
    _crop = 0.875 if _variant == "s0" else 0.9
    register(
        ModelEntry(
            name=_name,
            family="mobileone",
            kind="convnet",
            recipe="mobileone",
            builder="mobilebone.models.mobileone:build",
            variant=_variant,
            converters=_CONVERTERS,
            default_cfg=default_cfg(224, crop_pct=_crop, paper_ids=PAPER),
            tags=(
                PretrainedTag(
                    _name,
                    "apple_in1k",
                    224,
                    _crop,
                    "bilinear",
                    license="mobileone-license",
                    paper_ids=PAPER,
                    top1=_top1,
                ),
            ),
        )
    )
