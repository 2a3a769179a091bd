"""The task-model registry, the torchvision recipes it builds, and backbone initialization from weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mobilebone import create_model
from mobilebone.checkpoints import save_native
from mobilebone.tasks import create_detector, create_segmenter, list_task_models

BACKBONES = 10


def test_registry_lists_every_head_on_every_backbone() -> None:
    detection, segmentation = list_task_models("detection"), list_task_models("segmentation")
    assert len(detection) == len(segmentation) == 2 * BACKBONES
    assert {"ssdlite_mobileone_s0", "retinanet_mobilenetv4_conv_medium"} <= set(detection)
    assert {"deeplabv3_mobileone_s4", "lraspp_mobilenetv4_conv_small"} <= set(segmentation)
    assert list_task_models(pattern="lraspp_*") == [n for n in segmentation if n.startswith("lraspp_")]
    with pytest.raises(ValueError, match="unknown task"):
        list_task_models("keypoints")  # type: ignore[arg-type]


def test_unknown_or_wrong_task_names_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="did you mean: ssdlite_mobileone_s0"):
        create_detector("ssdlite_mobilone_s0")
    with pytest.raises(ValueError, match="unknown detection model 'deeplabv3_mobileone_s0'"):
        create_detector("deeplabv3_mobileone_s0")
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        create_segmenter("lraspp_mobileone_s0", num_classes=1)
    with pytest.raises(ValueError, match="take no option"):
        create_segmenter("lraspp_mobileone_s0", aux_loss=True)


def test_ssdlite_follows_torchvision_mobilenetv3_recipe() -> None:
    model = create_detector("ssdlite_mobilenetv4_conv_small", num_classes=5)
    assert model.transform.fixed_size == (320, 320)  # default input size
    maps = list(model.backbone(torch.rand(2, 3, 320, 320)).values())
    assert [tuple(m.shape[-2:]) for m in maps] == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert [m.shape[1] for m in maps] == [96, 960, 512, 256, 256, 128]  # stride-16/32 taps + 4 extra blocks
    assert model.anchor_generator.num_anchors_per_location() == [6] * 6
    norms = [m for m in model.head.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(n.eps == 1e-3 and n.momentum == 0.03 for n in norms)


def test_retinanet_and_segmenters_use_declared_levels() -> None:
    retina = create_detector("retinanet_mobilenetv4_conv_small", num_classes=5, size=128)
    levels = retina.backbone(torch.rand(1, 3, 128, 128))
    assert [tuple(v.shape[-2:]) for v in levels.values()] == [
        (16, 16),
        (8, 8),
        (4, 4),
        (2, 2),
        (1, 1),
    ]  # P3–P7
    deeplab = create_segmenter("deeplabv3_mobileone_s0", num_classes=3, aux_loss=True)
    assert deeplab.aux_classifier is not None and deeplab.classifier[0].convs[1][0].dilation == (12, 12)
    taps = deeplab.backbone(torch.rand(1, 3, 64, 64))
    assert {k: v.shape[1] for k, v in taps.items()} == {"aux": 256, "out": 1024}
    assert {k: 64 // v.shape[-1] for k, v in taps.items()} == {"aux": 16, "out": 16}  # last stage dilated
    deeplab32 = create_segmenter("deeplabv3_mobileone_s0", num_classes=3, output_stride=32)
    assert deeplab32.classifier[0].convs[1][0].dilation == (6, 6)
    assert deeplab32.backbone(torch.rand(1, 3, 64, 64))["out"].shape[-1] == 2


def test_backbone_weights_initialize_the_backbone_strictly(tmp_path: Path) -> None:
    classifier = create_model("mobilenetv4_conv_small", num_classes=10)
    with torch.no_grad():
        for p in classifier.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # differ from a fresh init
    weights = save_native(classifier, tmp_path / "cls.safetensors", model_name="mobilenetv4_conv_small")
    detector = create_detector("ssdlite_mobilenetv4_conv_small", num_classes=5, backbone_weights=weights)
    loaded = detector.backbone.body.backbone.state_dict()
    full = classifier.state_dict()
    for key, value in loaded.items():
        torch.testing.assert_close(value, full[key], rtol=0, atol=0, msg=key)
    # features_only prunes what the taps do not use: only the classification head (MNv4's 960→1280
    # conv_head and the classifier) may be missing.
    assert {k.split(".")[0] for k in set(full) - set(loaded)} <= {"conv_head", "classifier", "norm_head"}
    wrong = save_native(create_model("mobileone_s0"), tmp_path / "s0.safetensors", model_name="mobileone_s0")
    with pytest.raises(ValueError, match="mobileone"):
        create_segmenter("lraspp_mobilenetv4_conv_small", backbone_weights=wrong)
