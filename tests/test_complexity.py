"""Parameter and MAC counts recomputed by the code under test against the papers / reference code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobilebone import create_model, list_models
from mobilebone.analysis import count_macs, count_params

# name: (train-time params, deploy params, deploy MMACs, input size, relative MAC tolerance)
# MobileOne: the paper's Table 8 (fused counts; arXiv 2206.04040). MobileNetV4's deploy params (None here)
# are derived from timm's model by folding its norms (test_mobilenetv4_deploy_params_are_timms_folded).
EXPECTED: dict[str, tuple[int, int | None, float, int, float]] = {
    "mobileone_s0": (5_293_272, 2_078_504, 275.1, 224, 0.005),
    "mobileone_s1": (4_825_192, 4_764_840, 825.1, 224, 0.005),
    "mobileone_s2": (7_884_648, 7_808_168, 1298.4, 224, 0.005),
    "mobileone_s3": (10_170_600, 10_078_312, 1895.8, 224, 0.005),
    "mobileone_s4": (14_951_248, 14_838_352, 2979.3, 224, 0.005),
    # MobileNetV4: train params = timm's model (the official TF spec, timm ``mobilenetv3.py``); MACs (conv +
    # linear + attention matmuls) at the paper resolution, from timm's model counted the same way.
    "mobilenetv4_conv_small": (3_774_024, None, 186.0, 224, 0.01),
    "mobilenetv4_conv_medium": (9_715_512, None, 1080.0, 256, 0.01),
    "mobilenetv4_conv_large": (32_590_864, None, 6376.0, 384, 0.01),
    "mobilenetv4_hybrid_medium": (11_074_648, None, 1271.0, 256, 0.01),
    "mobilenetv4_hybrid_large": (37_764_624, None, 7712.0, 384, 0.01),
}
MNV4 = sorted(name for name in EXPECTED if name.startswith("mobilenetv4"))


def test_every_model_has_expected_counts() -> None:
    assert set(EXPECTED) == set(list_models())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_param_counts(name: str) -> None:
    train, deploy, *_ = EXPECTED[name]
    assert count_params(create_model(name)) == train
    if deploy is not None:
        assert count_params(create_model(name, deploy=True)) == deploy


def _timm_params_with_norms_folded(name: str) -> int:
    """timm's MNv4 parameter count after the fusions of the deploy form, by arithmetic on its modules.

    A BatchNorm after a conv folds into a conv bias (γ, β → one bias: −C); a layer-scale γ folds into the
    preceding projection (−C); an attention block's pre-norm disappears (−2C) into biases of the query
    projection and, without K/V down-sampling, of the key and value projections; with down-sampling the
    pre-norm of the K/V path stays as a per-channel scale and shift (+2C), since zero padding of the
    down-sampling conv happens after it.
    """
    timm = pytest.importorskip("timm")
    model = timm.create_model(name)
    total = sum(p.numel() for p in model.parameters())
    modules = dict(model.named_modules())
    for path, module in modules.items():
        parent = modules.get(path.rpartition(".")[0]) if "." in path else None
        kind = type(module).__name__
        if kind == "MobileAttention":
            attn, channels = module.attn, module.norm.num_features
            total += -2 * channels + attn.query.proj.out_channels
            if hasattr(attn.key, "down_conv"):
                total += 2 * channels
            else:
                total += attn.key.proj.out_channels + attn.value.proj.out_channels
        elif isinstance(module, nn.BatchNorm2d) and not (
            type(parent).__name__ == "MobileAttention" and path.endswith(".norm")
        ):
            total -= module.num_features
        elif kind == "LayerScale2d":
            total -= module.gamma.numel()
    return total


@pytest.mark.parametrize("name", MNV4)
def test_mobilenetv4_deploy_params_are_timms_folded(name: str) -> None:
    assert count_params(create_model(name, deploy=True)) == _timm_params_with_norms_folded(name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_deploy_macs(name: str) -> None:
    _, _, mmacs, size, tol = EXPECTED[name]
    report = count_macs(create_model(name, deploy=True), size)
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
