"""Parameter and MAC counts recomputed by the code under test against the papers / reference code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobilebone import create_model, list_models
from mobilebone.analysis import count_macs, count_params

# name: (train-time params, deploy params, deploy MMACs, input size, relative MAC tolerance)
# MobileOne: REFERENCE §1.1/1.5 (paper Table 8 = fused counts).
EXPECTED: dict[str, tuple[int, int, float, int, float]] = {
    "mobileone_s0": (5_293_272, 2_078_504, 275.1, 224, 0.005),
    "mobileone_s1": (4_825_192, 4_764_840, 825.1, 224, 0.005),
    "mobileone_s2": (7_884_648, 7_808_168, 1298.4, 224, 0.005),
    "mobileone_s3": (10_170_600, 10_078_312, 1895.8, 224, 0.005),
    "mobileone_s4": (14_951_248, 14_838_352, 2979.3, 224, 0.005),
    # MobileNetV4: train params = timm / official TF spec (REFERENCE §2.5); MACs (conv + linear + attention
    # matmuls) at the paper resolution from REFERENCE §2.5. Deploy params are smaller: each BN's γ, β become
    # one conv bias, layer scale γ is folded into the preceding projection, and the MQA pre-norm becomes
    # query (and K/V-projection) biases, or an explicit scale-and-shift before padded K/V down-convs.
    "mobilenetv4_conv_small": (3_774_024, 3_761_480, 186.0, 224, 0.01),
    "mobilenetv4_conv_medium": (9_715_512, 9_681_560, 1080.0, 256, 0.01),
    "mobilenetv4_conv_large": (32_590_864, 32_516_088, 6376.0, 384, 0.01),
    "mobilenetv4_hybrid_medium": (11_074_648, 11_032_728, 1271.0, 256, 0.01),
    "mobilenetv4_hybrid_large": (37_764_624, 37_672_952, 7712.0, 384, 0.01),
}


def test_every_model_has_expected_counts() -> None:
    assert set(EXPECTED) == set(list_models())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_param_counts(name: str) -> None:
    train, deploy, *_ = EXPECTED[name]
    assert count_params(create_model(name)) == train
    assert count_params(create_model(name, inference_mode=True)) == deploy


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_deploy_macs(name: str) -> None:
    _, _, mmacs, size, tol = EXPECTED[name]
    report = count_macs(create_model(name, inference_mode=True), size)
    assert report.total / 1e6 == pytest.approx(mmacs, rel=tol)
    assert sum(report.layers(1).values()) == report.total


def test_macs_of_known_layers() -> None:
    conv = nn.Conv2d(8, 16, 3, padding=1)
    assert count_macs(conv, (8, 10, 10)).total == 16 * 8 * 9 * 100
    assert count_macs(nn.Linear(5, 7), (1, 1, 2, 5)).total == 2 * 35


def test_attention_matmuls_are_counted() -> None:
    class Attn(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q = x.flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, N, C)
            return nn.functional.scaled_dot_product_attention(q, q, q)

    n, c = 64, 16
    report = count_macs(Attn(), (1, c, 8, 8))
    assert report.total == 2 * n * n * c  # QKᵀ and AV


def test_bad_input_size() -> None:
    with pytest.raises(ValueError, match="input_size"):
        count_macs(nn.Identity(), (1, 2, 3, 4, 5))
