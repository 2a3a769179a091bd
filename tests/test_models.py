"""The model contract, enforced on every registered model."""

from __future__ import annotations

import pytest
import torch

from mobilebone import create_model, list_models

ALL_MODELS = list_models()


def test_registry_lists_families() -> None:
    assert {f"mobileone_s{i}" for i in range(5)} <= set(ALL_MODELS)
    assert list_models("mobileone_s[01]") == ["mobileone_s0", "mobileone_s1"]


def test_unknown_model_lists_close_matches() -> None:
    with pytest.raises(ValueError, match=r"did you mean: .*mobileone_s0"):
        create_model("mobileone_s01")


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_backward(name: str) -> None:
    model = create_model(name, num_classes=7)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert model.num_features == model.forward_head(model.forward_features(x), pre_logits=True).shape[1]


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("inference_mode", [False, True])
def test_features_only_matches_feature_info(name: str, inference_mode: bool) -> None:
    model = create_model(name, features_only=True, inference_mode=inference_mode).eval()
    info = model.feature_info
    assert [i.reduction for i in info] == sorted(i.reduction for i in info)
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 96, 128))
    assert len(maps) == len(info)
    for fmap, level in zip(maps, info, strict=True):
        assert fmap.shape[1] == level.num_chs
        assert fmap.shape[2] == -(-96 // level.reduction)
        assert fmap.shape[3] == -(-128 // level.reduction)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_features_only_out_indices(name: str) -> None:
    model = create_model(name, features_only=True, out_indices=(-2, -1)).eval()
    full = create_model(name).feature_info
    assert model.feature_info == full[-2:]
    with pytest.raises(ValueError, match="out of range"):
        create_model(name, features_only=True, out_indices=(len(full),))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_reset_classifier(name: str) -> None:
    model = create_model(name).eval()
    model.reset_classifier(10)
    x = torch.randn(1, 3, 64, 64)
    assert model(x).shape == (1, 10)
    model.reset_classifier(0)
    assert model(x).shape == (1, model.num_features)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_input_validation(name: str) -> None:
    model = create_model(name).eval()
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.randn(1, 3, 16, 64))
    with pytest.raises(ValueError, match="4-D"):
        model(torch.randn(3, 64, 64))


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("size", [(32, 32), (33, 47), (250, 190)])
def test_odd_input_sizes(name: str, size: tuple[int, int]) -> None:
    model = create_model(name, inference_mode=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 1000)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_in_chans(name: str) -> None:
    model = create_model(name, in_chans=1, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 3)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_drop_path_is_active_only_in_training(name: str) -> None:
    model = create_model(name, drop_path_rate=0.5, num_classes=5)
    x = torch.randn(4, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    b = model(x)
    assert not torch.allclose(a, b)
