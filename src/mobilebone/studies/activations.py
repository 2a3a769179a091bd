"""The activation study (MobileOne §3, "Activation Functions"): one 30-layer net, eight activations.

The paper times ReLU, GELU, SE-ReLU, Dynamic Shift-Max and DynamicReLU-A/B on an iPhone 12 and finds the
dynamic ones drastically slower at similar MACs, hence ReLU-only MobileOne. Hardswish and SiLU are added
here because MobileNetV3 and EfficientNet made them the common alternatives.
"""

from __future__ import annotations

from functools import partial

from mobilebone.layers.activations import ACTIVATIONS
from mobilebone.studies.networks import StudyNet
from mobilebone.studies.run import StudyCase

TITLE = "the 30-layer network with eight activation functions"
# iPhone-12 latencies (ms) as recalled from MobileOne (Vasu et al. 2023, §4) — not checked against the paper.
PAPER_MS = {
    "relu": 1.53,
    "gelu": 1.63,
    "se_relu": 2.10,
    "dynamic_shift_max": 57.04,
    "dy_relu_a": 273.49,
    "dy_relu_b": 242.14,
}
DESCRIPTIONS = {
    "relu": "ReLU",
    "gelu": "GELU, exact erf form",
    "hardswish": "Hardswish (MobileNetV3)",
    "silu": "SiLU / Swish (EfficientNet)",
    "se_relu": "Squeeze-Excite then ReLU after every conv",
    "dynamic_shift_max": "Dynamic Shift-Max (MicroNet), J=2, K=2, G=4",
    "dy_relu_a": "DY-ReLU-A: K=2 pieces, coefficients shared by all channels",
    "dy_relu_b": "DY-ReLU-B: K=2 pieces, channel-wise coefficients",
}


def cases(input_size: int = 224, batch_size: int = 1) -> list[StudyCase]:
    """One case per activation of ``ACTIVATIONS``, all on the same 30-layer network."""
    shape = (batch_size, 3, input_size, input_size)
    return [
        StudyCase(
            name=name,
            build=partial(StudyNet, name),
            input_shape=shape,
            group="30-layer net",
            description=DESCRIPTIONS[name],
            paper=f"{PAPER_MS[name]:.2f} ms (iPhone 12, unverified)" if name in PAPER_MS else "",
        )
        for name in ACTIVATIONS
    ]
