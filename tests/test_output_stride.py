"""``output_stride=16``: the last stage dilated instead of strided (timm's ``output_stride=``; DeepLabV3 §3.2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobilebone import create_model, list_models, reparameterize_model
from mobilebone.models.mobilenetv4.model import MobileNetV4
from mobilebone.models.mobilenetv4.specs import CONV_SMALL, MobileNetV4Spec, mqa
from mobilebone.testing import calibrate_batchnorm, randomize_batchnorm, randomize_layer_scale

SIZE = 96  # a multiple of 32, so every level's stride divides the input exactly


@pytest.mark.parametrize("name", list_models())
def test_feature_maps_have_the_declared_strides(name: str) -> None:
    model = create_model(name, features_only=True, output_stride=16).eval()
    strides = [info.reduction for info in model.feature_info]
    assert strides == [2, 4, 8, 16, 16]
    with torch.no_grad():
        maps = model(torch.rand(1, 3, SIZE, SIZE))
    assert [SIZE // m.shape[-1] for m in maps] == strides
    assert [m.shape[1] for m in maps] == [info.num_chs for info in model.feature_info]
    # Same parameters as the stride-32 network: its classification checkpoints load strictly.
    reference = create_model(name, features_only=True)
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


@pytest.mark.parametrize(
    "name",
    [
        "mobileone_s0",  # 4 k×k branches + 1×1 + identity in the dilated stage's units
        "mobileone_s4",  # Squeeze-Excite in the dilated stage
        "mobilenetv4_conv_small",  # UIB ExtraDW / IB with dilated depthwise convs
        "mobilenetv4_hybrid_medium",  # Mobile-MQA blocks and layer scale in the dilated stage
    ],
)
def test_dilated_backbone_fuses_exactly(name: str) -> None:
    model = create_model(name, features_only=True, output_stride=16).double()
    randomize_batchnorm(model, seed=3)
    randomize_layer_scale(model, seed=3)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    calibrate_batchnorm(model, x)
    with torch.no_grad():
        expected = model(x)
        fused = reparameterize_model(model)
        actual = fused(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    dilated = [m for m in fused.modules() if isinstance(m, nn.Conv2d) and m.dilation == (2, 2)]
    assert dilated, "no dilated conv survived fusion"
    for got, ref in zip(actual, expected, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


def test_built_deploy_form_is_dilated_too() -> None:
    train = create_model("mobileone_s0", features_only=True, output_stride=16).eval()
    built = create_model("mobileone_s0", features_only=True, output_stride=16, deploy=True).eval()
    fused = reparameterize_model(train)
    assert {k: v.shape for k, v in built.state_dict().items()} == {
        k: v.shape for k, v in fused.state_dict().items()
    }
    built.load_state_dict(fused.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for got, ref in zip(built(x), fused(x), strict=True):
            torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("name", ["mobileone_s0", "mobilenetv4_conv_small"])
def test_unsupported_output_stride_is_one_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match=r"^output_stride must be one of 16, 32, got 8$"):
        create_model(name, output_stride=8)


def test_attention_with_kv_down_sampling_in_the_dilated_stage_is_refused() -> None:
    stages = list(CONV_SMALL.stages)
    stages[3] = (*stages[3], mqa(4, 32, kv_stride=2))
    spec = MobileNetV4Spec(stem_chs=CONV_SMALL.stem_chs, stages=tuple(stages))
    MobileNetV4(spec)  # fine at output stride 32
    with pytest.raises(ValueError, match="K/V-strided attention"):
        MobileNetV4(spec, output_stride=16)


@pytest.mark.parametrize("name", ["deeplabv3_mobileone_s0", "lraspp_mobilenetv4_conv_small"])
def test_segmenters_default_to_output_stride_16(name: str) -> None:
    from mobilebone.tasks import create_segmenter

    model = create_segmenter(name, num_classes=3).eval()
    assert model.output_stride == 16
    assert max(info.reduction for info in model.backbone.body.feature_info) == 16
    if name.startswith("deeplabv3_"):
        rates = [
            m.dilation[0]
            for m in model.classifier.modules()
            if isinstance(m, nn.Conv2d) and m.dilation[0] > 1
        ]
        assert rates == [12, 24, 36]
    with torch.no_grad():
        assert model(torch.rand(1, 3, 190, 250))["out"].shape == (1, 3, 190, 250)
    assert create_segmenter(name, num_classes=3, output_stride=32).output_stride == 32


def test_task_files_record_the_output_stride(tmp_path) -> None:
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from mobilebone.tasks import create_segmenter, load_task_model, save_task_model

    path = save_task_model(
        create_segmenter("lraspp_mobileone_s0", num_classes=3, output_stride=32), tmp_path / "a"
    )
    assert load_task_model(path).output_stride == 32
    # A file written before the option existed (no output_stride in its options) was trained at stride 32.
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    meta["options"] = json.dumps(
        {k: v for k, v in json.loads(meta["options"]).items() if k != "output_stride"}
    )
    save_file(load_file(str(path)), str(tmp_path / "old"), metadata=meta)
    assert load_task_model(tmp_path / "old").output_stride == 32
    assert (
        load_task_model(
            save_task_model(create_segmenter("lraspp_mobileone_s0", num_classes=3), tmp_path / "b")
        ).output_stride
        == 16
    )
