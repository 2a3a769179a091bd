"""timm's model contract on every model, train-time and deploy form, checked against timm itself.

Each model is built once per form (cached); tests that change a model work on a deep copy.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

from mobilebone import create_model, list_models, reparameterize_model
from mobilebone.models.contract import Backbone, FeatureInfoList
from mobilebone.testing import FORMS, model_in_form, randomize_batchnorm

timm = pytest.importorskip("timm")

ALL_MODELS = list_models()
SIZE = 64


@functools.cache
def _model(name: str, form: str) -> Backbone:
    """One eval-mode model per (name, form), BN statistics randomized; never mutate it (deepcopy first)."""
    model = model_in_form(name, form, seed=3)
    assert isinstance(model, Backbone)
    return model


@functools.cache
def _timm_model(name: str, **kwargs: object) -> nn.Module:
    return timm.create_model(name, **kwargs).eval()


def _x(batch: int = 1, size: int = SIZE) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(7))


# ----------------------------------------------------------------------------------- pretrained_cfg


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_pretrained_cfg_names_real_modules(name: str, form: str) -> None:
    model = _model(name, form)
    cfg = model.pretrained_cfg
    assert model.default_cfg is cfg
    for key in ("input_size", "pool_size", "crop_pct", "interpolation", "mean", "std", "num_classes"):
        assert key in cfg, key
    assert cfg["num_classes"] == model.num_classes == 1000
    size = cfg["input_size"][-1]
    assert cfg["pool_size"] == (-(-size // 32),) * 2
    firsts = cfg["first_conv"] if isinstance(cfg["first_conv"], tuple) else (cfg["first_conv"],)
    for first in firsts:
        conv = model.get_submodule(first)
        assert isinstance(conv, nn.Conv2d) and conv.in_channels == model.in_chans, first
    assert model.get_submodule(cfg["classifier"]) is model.get_classifier()
    assert isinstance(model.get_classifier(), nn.Linear)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_pretrained_cfg_matches_timm(name: str) -> None:
    """The default tag's cfg equals timm's (values timm publishes; ours is built independently)."""
    from mobilebone.checkpoints.tags import default_tag

    tag = default_tag(name).name
    ours = create_model(tag).pretrained_cfg
    theirs = timm.models.get_pretrained_cfg(tag).to_dict()
    for key in ("input_size", "crop_pct", "interpolation", "mean", "std", "num_classes", "pool_size"):
        assert ours[key] == theirs[key], key
    for key in ("hf_hub_id", "license", "classifier"):
        assert ours[key] == theirs[key], key
    if name.startswith("mobileone"):
        assert ours["first_conv"] == theirs["first_conv"]
    assert ours["paper_ids"].startswith("arXiv:")


def test_pretrained_cfg_follows_the_model() -> None:
    """Derived keys are refreshed: fusing renames the first conv, a new head changes num_classes."""
    model = create_model("mobileone_s0")
    assert model.pretrained_cfg["first_conv"] == ("stem.conv_kxk.0.conv", "stem.conv_scale.conv")
    assert reparameterize_model(model).pretrained_cfg["first_conv"] == "stem.reparam_conv"
    model.reset_classifier(7)
    assert model.default_cfg["num_classes"] == 7
    assert create_model("mobilenetv4_conv_medium.e250_r384_in12k_ft_in1k").pretrained_cfg["pool_size"] == (
        12,
        12,
    )


# ------------------------------------------------------------------------------------- feature_info


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_feature_info_object_matches_timm(name: str, form: str) -> None:
    model = _model(name, form)
    info = model.feature_info
    assert isinstance(info, FeatureInfoList) and len(info) == 5
    assert info.channels() == [i.num_chs for i in info] == [i["num_chs"] for i in info]
    assert info.reduction() == [2, 4, 8, 16, 32]
    assert info.channels(-1) == model.num_features and info.reduction([0, 1]) == [2, 4]
    assert info.get_dicts(keys=("num_chs",), idx=0) == {"num_chs": info[0].num_chs}
    assert [d["module"] for d in info.get_dicts()] == info.module_name()
    for module in info.module_name():
        model.get_submodule(module)  # raises if the name is wrong
    theirs = _timm_model(name, features_only=True).feature_info
    assert info.channels() == theirs.channels()
    assert info.reduction() == theirs.reduction()


# ------------------------------------------------------------------------------ forward_intermediates


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_intermediates(name: str, form: str) -> None:
    model = _model(name, form)
    x = _x()
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert torch.equal(final, model.forward_features(x))
        assert [m.shape[1] for m in maps] == model.feature_info.channels()
        assert [SIZE // m.shape[-1] for m in maps] == model.feature_info.reduction()
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        picked = model.forward_intermediates(x, indices=[1, -2], intermediates_only=True, stop_early=True)
    assert all(torch.equal(a, b) for a, b in zip(last_two, maps[-2:], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(picked, [maps[1], maps[3]], strict=True))
    with pytest.raises(ValueError, match="out of range"):
        model.forward_intermediates(x, indices=[5])
    with pytest.raises(ValueError, match="NCHW"):
        model.forward_intermediates(x, output_fmt="NHWC")
    with pytest.raises(ValueError, match="intermediates_only"):
        model.forward_intermediates(x, stop_early=True)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_intermediates_match_timm(name: str) -> None:
    """Our intermediates equal timm's on the same weights (train-time form, randomized BN)."""
    from mobilebone.hub_publish import to_timm_state_dict

    model = _model(name, "train")
    reference = copy.deepcopy(_timm_model(name))
    reference.load_state_dict(to_timm_state_dict(model.state_dict(), name))
    x = _x()
    with torch.no_grad():
        ours = model.forward_intermediates(x, indices=[0, 2, 4], intermediates_only=True)
        theirs = reference.forward_intermediates(x, indices=[0, 2, 4], intermediates_only=True)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("form", ["train", "built"])
@pytest.mark.parametrize("name", ALL_MODELS)
def test_prune_intermediate_layers(name: str, form: str) -> None:
    full = _model(name, form)
    pruned = copy.deepcopy(full)
    assert pruned.prune_intermediate_layers([1, 2]) == [1, 2]
    x = _x()
    with torch.no_grad():
        expected = full.forward_intermediates(x, indices=[1, 2], intermediates_only=True)
        final, got = pruned.forward_intermediates(x, indices=[1, 2])
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert torch.equal(final, expected[-1])  # the pruned model ends at level 2
    assert pruned.num_features == full.feature_info.channels(2)
    assert len(pruned.stage_modules()) == 2
    kept = {k.split(".")[0] for k in pruned.state_dict()}
    assert (
        "conv_head" not in kept
        and "classifier" not in kept
        and not any(k.startswith("head.fc") for k in pruned.state_dict())
    )
    # prune_head=False on the full depth keeps the classifier, as timm does.
    whole = copy.deepcopy(full)
    whole.prune_intermediate_layers(5, prune_head=False)
    with torch.no_grad():
        torch.testing.assert_close(whole(x), full(x), rtol=0, atol=0)


# ------------------------------------------------------------------------------------- features_only


@pytest.mark.parametrize(
    ("name", "out_indices"),
    [(n, None) for n in ALL_MODELS]
    + [(n, (1, 2)) for n in ALL_MODELS]
    + [("mobileone_s0", (0,)), ("mobilenetv4_hybrid_medium", (0, 3))],
)
def test_features_only_every_parameter_gets_a_gradient(
    name: str, out_indices: tuple[int, ...] | None
) -> None:
    """DDP without find_unused_parameters: nothing in a features_only model may go without a gradient."""
    model = create_model(name, features_only=True, out_indices=out_indices, feature_cls="getter")
    maps = model(torch.randn(2, 3, SIZE, SIZE))
    sum(m.float().mean() for m in maps).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    # Same pruning as timm: the same number of parameters as timm's getter on that architecture.
    kwargs = {} if out_indices is None else {"out_indices": out_indices}
    theirs = timm.create_model(name, features_only=True, feature_cls="getter", **kwargs)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert model.feature_info.channels() == theirs.feature_info.channels()


def test_features_only_rejects_unknown_feature_cls() -> None:
    with pytest.raises(ValueError, match="feature_cls='hook' is not supported"):
        create_model("mobileone_s0", features_only=True, feature_cls="hook")


@pytest.mark.parametrize("deploy", [False, True])
@pytest.mark.parametrize("name", ALL_MODELS)
def test_features_only_equals_forward_intermediates(name: str, deploy: bool) -> None:
    form = "built" if deploy else "train"
    full = _model(name, form)
    feats = create_model(name, features_only=True, out_indices=(1, 3), deploy=deploy)
    feats.backbone.load_state_dict(full.state_dict(), strict=False)
    x = _x()
    with torch.no_grad():
        expected = full.forward_intermediates(x, indices=[1, 3], intermediates_only=True)
        got = feats.eval()(x)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert feats.default_cfg is feats.backbone.pretrained_cfg


# ---------------------------------------------------------------------------------- head and pooling


@pytest.mark.parametrize("form", ["train", "fused"])
@pytest.mark.parametrize("name", ALL_MODELS)
def test_unpooled_features_and_reset_classifier(name: str, form: str) -> None:
    model = copy.deepcopy(_model(name, form))
    x = _x(2)
    theirs = _timm_model(name, num_classes=0, global_pool="")
    with torch.no_grad():
        model.reset_classifier(0, global_pool="")
        unpooled = model(x)
        assert unpooled.shape == theirs(x).shape  # MNv4: conv_head on every position (1280 channels)
        model.reset_classifier(7, "avg")
        assert model(x).shape == (2, 7)
    classifier = model.get_classifier()
    assert isinstance(classifier, nn.Linear) and classifier.out_features == 7
    with pytest.raises(ValueError, match="needs num_classes=0"):
        model.reset_classifier(3, "")


@pytest.mark.parametrize("name", ["mobileone_s0", "mobilenetv4_conv_small"])
def test_create_model_global_pool(name: str) -> None:
    model = create_model(name, num_classes=0, global_pool="").eval()
    with torch.no_grad():
        out = model(_x())
    assert out.dim() == 4 and out.shape[-1] == SIZE // 32
    assert isinstance(model.get_classifier(), nn.Identity)
    with pytest.raises(ValueError, match="global_pool must be one of"):
        create_model(name, global_pool="mean")


# ----------------------------------------------------------------------- grad checkpointing, lr decay


@pytest.mark.parametrize("name", ALL_MODELS)
def test_grad_checkpointing_is_exact_and_recomputes(name: str) -> None:
    """Training mode with drop path: same outputs and gradients, and the stages really run twice."""
    torch.manual_seed(0)
    plain = randomize_batchnorm(create_model(name, drop_path_rate=0.2, num_classes=5), seed=1).train()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    calls: list[int] = []
    ckpt.stage_modules()[1].register_forward_pre_hook(lambda *_: calls.append(1))
    x = _x(2)
    outputs = []
    for model in (plain, ckpt):
        torch.manual_seed(123)
        out = model(x)
        out.square().mean().backward()
        outputs.append(out)
    assert torch.equal(outputs[0], outputs[1])
    assert len(calls) == 2, "set_grad_checkpointing(True) did not recompute the stage in backward"
    grads = dict(plain.named_parameters())
    for key, param in ckpt.named_parameters():
        torch.testing.assert_close(param.grad, grads[key].grad, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_group_matcher_orders_layers_for_lr_decay(name: str) -> None:
    """timm's layer-wise decay (which reads group_matcher) scales stem < blocks < head, covering all."""
    from timm.optim._param_groups import param_groups_layer_decay

    model = _model(name, "train")
    groups = param_groups_layer_decay(model, weight_decay=0.0, layer_decay=0.5)
    scale_of = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    assert len(scale_of) == sum(1 for _ in model.parameters())
    stem = {scale_of[id(p)] for p in model.stem.parameters()}
    first = {scale_of[id(p)] for p in model.stage_modules()[0].parameters()}
    last = {scale_of[id(p)] for p in model.stage_modules()[-1].parameters()}
    head = {scale_of[id(p)] for p in model.get_classifier().parameters()}
    assert max(stem) < min(first) <= max(last) < min(head) and head == {1.0}
    # As many depth groups as timm's own model of this architecture gets.
    theirs = param_groups_layer_decay(_timm_model(name), weight_decay=0.0, layer_decay=0.5)
    assert len({g["lr_scale"] for g in groups}) == len({g["lr_scale"] for g in theirs})
