"""The model contract, enforced on every registered model."""

from __future__ import annotations

import pytest
import torch

from mobilebone import create_model, list_models, reparameterize_model
from mobilebone.testing import max_relative_error, randomize_batchnorm

ALL_MODELS = list_models()


def test_registry_lists_families() -> None:
    assert {f"mobileone_s{i}" for i in range(5)} <= set(ALL_MODELS)
    assert list_models("mobileone_s[01]") == ["mobileone_s0", "mobileone_s1"]


def test_unknown_model_lists_close_matches() -> None:
    with pytest.raises(ValueError, match=r"did you mean: .*mobileone_s0"):
        create_model("mobileone_s01")


def test_unknown_weight_tag_lists_known_tags() -> None:
    with pytest.raises(
        ValueError, match=r"unknown weight tag 'bogus_tag' for mobileone_s0; known tags: apple_in1k"
    ):
        create_model("mobileone_s0.bogus_tag")
    with pytest.raises(ValueError, match=r"known tags: e1200_r224_in1k, e2400_r224_in1k, e3600_r256_in1k"):
        create_model("mobilenetv4_conv_small.apple_in1k")  # a tag of another architecture
    # A known tag without pretrained=True builds the bare architecture (no download).
    assert type(create_model("mobileone_s0.apple_in1k")) is type(create_model("mobileone_s0"))


@pytest.mark.parametrize("name", list_models(pretrained=True))
def test_every_listed_weight_tag_is_accepted(name: str) -> None:
    from mobilebone.registry import pretrained_cfg

    # the names `list_models(pretrained=True)` prints must all be accepted by create_model, with their tag
    assert pretrained_cfg(name)["tag"] == name.partition(".")[2]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_backward(name: str) -> None:
    model = create_model(name, num_classes=7)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    # timm's contract: num_features = channels of forward_features, head_hidden_size = pre-logits width.
    features = model.forward_features(x)
    assert features.shape[1] == model.num_features
    assert model.forward_head(features, pre_logits=True).shape[1] == model.head_hidden_size


@pytest.mark.parametrize("name", ALL_MODELS)
def test_drop_path_rate_attribute(name: str) -> None:
    assert create_model(name).drop_path_rate == 0.0
    assert create_model(name, drop_path_rate=0.125, deploy=True).drop_path_rate == 0.125


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("deploy", [False, True])
def test_features_only_matches_feature_info(name: str, deploy: bool) -> None:
    model = create_model(name, features_only=True, deploy=deploy).eval()
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
    assert model(x).shape == (1, model.head_hidden_size)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_input_validation(name: str) -> None:
    model = create_model(name).eval()
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.randn(1, 3, 16, 64))
    with pytest.raises(ValueError, match="4-D"):
        model(torch.randn(3, 64, 64))


def _odd_sizes(name: str) -> list[tuple[int, int]]:
    # The minimum, and sides that are neither equal nor multiples of 32 (every stride-2 step rounds up).
    sizes = [(32, 32), (33, 95)]
    if name.startswith("mobilenetv4"):
        # Hybrids: the stride-16 map is 16x12, its K/V are down-sampled to 8x6 (MQA kv_stride=2).
        sizes.append((250, 190))
    return sizes


@pytest.mark.parametrize("form", ["train", "fused", "deploy"])
@pytest.mark.parametrize("name", ALL_MODELS)
def test_odd_input_sizes(name: str, form: str) -> None:
    """Train-time, reparameterized and directly built deploy forms all take odd, non-square inputs."""
    model = create_model(name, deploy=form == "deploy")
    reference = None
    if form == "fused":
        reference = randomize_batchnorm(model, seed=2).eval()
        model = reparameterize_model(reference)
    model.eval()  # batch 1: BatchNorm needs eval mode where the map is 1x1 (32x32 input, pooled head)
    for height, width in _odd_sizes(name):
        x = torch.randn(1, 3, height, width)
        with torch.no_grad():
            features = model.forward_features(x)
            logits = model.forward_head(features)
        assert features.shape == (1, model.num_features, -(-height // 32), -(-width // 32)), (height, width)
        assert logits.shape == (1, 1000)
        if reference is not None:
            with torch.no_grad():
                error = max_relative_error(logits, reference(x))
            assert error <= 1e-5, f"{name} at {height}x{width}: fused vs train-time error {error:.3g}"


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


def test_inference_mode_is_the_old_name_of_deploy() -> None:
    """Apple's ``inference_mode=True`` still builds the deploy form, with a FutureWarning naming ``deploy``."""
    with pytest.warns(FutureWarning, match="deploy="):
        old = create_model("mobileone_s0", inference_mode=True)
    new = create_model("mobileone_s0", deploy=True)
    assert old.state_dict().keys() == new.state_dict().keys()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in old.modules())
