"""Structural reparameterization: the deploy form computes exactly what the train-time form does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobilebone import create_model, list_models, reparameterize_model
from mobilebone.layers import ConvNormAct, conv_with_weights
from mobilebone.models.mobileone_block import MobileOneBlock
from mobilebone.reparam import fuse_conv_bn, identity_kernel, pad_kernel
from mobilebone.testing import max_relative_error, randomize_batchnorm

ALL_MODELS = list_models()
INPUTS = [(2, 3, 224, 224), (1, 3, 160, 256)]


def _default_size(name: str) -> int:
    return int(create_model(name).pretrained_cfg["input_size"][-1])


def _pair(name: str, dtype: torch.dtype) -> tuple[nn.Module, nn.Module]:
    model = randomize_batchnorm(create_model(name), seed=1).eval().to(dtype)
    return model, reparameterize_model(model)


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("shape", INPUTS, ids=["2x224x224", "1x160x256"])
@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)], ids=["f32", "f64"]
)
def test_fused_equals_train_time(name: str, shape: tuple[int, ...], dtype: torch.dtype, tol: float) -> None:
    model, fused = _pair(name, dtype)
    x = torch.randn(shape, dtype=dtype)
    with torch.no_grad():
        expected, actual = model(x), fused(x)
    error = max_relative_error(actual, expected)
    assert error <= tol, f"{name}: max relative error {error:.3g} > {tol:g}"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_fused_graph_has_no_batchnorm_or_branches(name: str) -> None:
    fused = reparameterize_model(create_model(name))
    assert not fused.training
    kinds = {type(m).__name__ for m in fused.modules()}
    assert "BatchNorm2d" not in kinds
    for module in fused.modules():
        if isinstance(module, MobileOneBlock):
            assert module.reparam_conv is not None and module.conv_kxk is None
        if isinstance(module, ConvNormAct):
            assert module.is_fused


@pytest.mark.parametrize("name", ALL_MODELS)
def test_inference_mode_loads_fused_weights_strictly(name: str) -> None:
    fused = reparameterize_model(randomize_batchnorm(create_model(name)))
    built = create_model(name, deploy=True)
    built.load_state_dict(fused.state_dict(), strict=True)
    built.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(built(x), fused(x))


def test_reparameterize_is_idempotent_and_copies() -> None:
    model = randomize_batchnorm(create_model("mobileone_s0"))
    fused = reparameterize_model(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the input model must be untouched"
    again = reparameterize_model(fused)
    for (ka, va), (kb, vb) in zip(fused.state_dict().items(), again.state_dict().items(), strict=True):
        assert ka == kb
        torch.testing.assert_close(va, vb, rtol=0, atol=0)
    inplace = reparameterize_model(model, inplace=True)
    assert inplace is model


def test_fusion_math_primitives() -> None:
    bn = randomize_batchnorm(nn.BatchNorm2d(4), seed=3).eval().double()
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=True).double()
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64)
    weight, bias = fuse_conv_bn(conv.weight, conv.bias, bn)
    torch.testing.assert_close(nn.functional.conv2d(x, weight, bias, padding=1, groups=2), bn(conv(x)))
    eye = identity_kernel(4, 2, 3, dtype=torch.float64, device=torch.device("cpu"))
    torch.testing.assert_close(nn.functional.conv2d(x, eye, padding=1, groups=2), x)
    one = torch.randn(4, 2, 1, 1, dtype=torch.float64)
    torch.testing.assert_close(
        nn.functional.conv2d(x, pad_kernel(one, 3), padding=1, groups=2),
        nn.functional.conv2d(x, one, groups=2),
    )
    with pytest.raises(ValueError, match="cannot centre"):
        pad_kernel(torch.zeros(1, 1, 3, 3), 4)


@pytest.mark.parametrize("bias", [True, False])
def test_conv_with_weights_keeps_geometry(bias: bool) -> None:
    conv = nn.Conv2d(6, 4, (3, 5), stride=2, padding=(1, 2), groups=2, bias=bias).double()
    weight = torch.randn_like(conv.weight)
    new_bias = torch.randn(4, dtype=torch.float64) if bias else None
    new = conv_with_weights(weight, new_bias, stride=conv.stride, padding=conv.padding, groups=conv.groups)
    assert (new.in_channels, new.out_channels, new.kernel_size) == (6, 4, (3, 5))
    assert (new.stride, new.padding, new.groups) == ((2, 2), (1, 2), 2)
    assert new.weight.dtype == torch.float64 and (new.bias is not None) == bias
    x = torch.randn(1, 6, 9, 8, dtype=torch.float64)
    expected = nn.functional.conv2d(x, weight, new_bias, stride=2, padding=(1, 2), groups=2)
    torch.testing.assert_close(new(x), expected)


@pytest.mark.parametrize(
    ("kernel", "stride", "groups", "in_chs", "out_chs"),
    [(3, 1, 8, 8, 8), (3, 2, 8, 8, 8), (1, 1, 1, 8, 8), (1, 1, 1, 8, 16), (3, 2, 1, 3, 8)],
    ids=["dw-identity", "dw-stride2", "pw-identity", "pw-expand", "stem"],
)
def test_mobileone_unit_branches(kernel: int, stride: int, groups: int, in_chs: int, out_chs: int) -> None:
    block = MobileOneBlock(in_chs, out_chs, kernel, stride, groups, num_conv_branches=4)
    assert (block.identity is not None) == (in_chs == out_chs and stride == 1)
    assert (block.conv_scale is not None) == (kernel > 1)
    block = randomize_batchnorm(block, seed=5).eval().double()
    x = torch.randn(2, in_chs, 11, 11, dtype=torch.float64)
    expected = block(x)
    block.reparameterize()
    torch.testing.assert_close(block(x), expected, rtol=1e-12, atol=1e-12)
