"""Every task model (4 heads × 10 backbones): train step, eval outputs, odd sizes, fusion, ONNX export."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

from mobilebone.tasks import (
    create_detector,
    create_segmenter,
    list_task_models,
    raw_outputs,
    reparameterize_task_model,
)
from mobilebone.tasks.export import export_task_onnx
from mobilebone.testing import calibrate_batchnorm, float32_error, randomize_batchnorm, randomize_layer_scale

NUM_CLASSES = 4
DET_SIZE = 128  # small square input the detectors resize to (the heads still see six / five levels)
SEG_HW = (96, 128)
CHECK_HW = (64, 96)  # fusion and export checks: raw outputs need no fixed size
ODD_HW = (190, 250)  # height, width: not multiples of the backbone's stride


def _build(name: str) -> nn.Module:
    if name in list_task_models("detection"):
        return create_detector(name, num_classes=NUM_CLASSES, size=DET_SIZE)
    aux = {"aux_loss": True} if name.startswith("deeplabv3_") else {}
    return create_segmenter(name, num_classes=NUM_CLASSES, **aux)


def _targets(batch: int, hw: tuple[int, int]) -> list[dict[str, torch.Tensor]]:
    height, width = hw
    boxes = torch.tensor([[0.1 * width, 0.2 * height, 0.6 * width, 0.7 * height], [5.0, 5.0, 40.0, 30.0]])
    return [{"boxes": boxes, "labels": torch.tensor([1, NUM_CLASSES - 1])} for _ in range(batch)]


def _check_train_step(model: nn.Module, detection: bool) -> None:
    model.train()
    if detection:
        images = [torch.rand(3, *ODD_HW), torch.rand(3, *ODD_HW)]
        losses = model(images, _targets(2, ODD_HW))
        loss = sum(losses.values())
    else:
        out = model(torch.rand(2, 3, *SEG_HW))
        target = torch.randint(0, NUM_CLASSES, (2, *SEG_HW))
        target[:, :4] = 255  # ignored pixels
        loss = sum(nn.functional.cross_entropy(v, target, ignore_index=255) for v in out.values())
    assert math.isfinite(float(loss.detach()))
    loss.backward()
    # Only the pre-logits conv of MobileNetV4 (not part of any feature level) may stay unused.
    unused = [n for n, p in model.named_parameters() if p.grad is None and ".conv_head." not in n]
    assert not unused, f"parameters without a gradient: {unused[:3]}"
    # Both the backbone and the head learn.
    assert any(float(p.grad.abs().sum()) > 0 for p in model.backbone.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)


def _check_eval(model: nn.Module, detection: bool) -> None:
    model.eval()
    with torch.no_grad():
        if detection:
            height, width = ODD_HW
            (det,) = model([torch.rand(3, height, width)])
            assert set(det) == {"boxes", "labels", "scores"}
            assert det["boxes"].shape[1:] == (4,) and det["boxes"].shape[0] == det["labels"].shape[0]
            if len(det["boxes"]):  # boxes are in the original image's coordinates
                assert float(det["boxes"][:, 2].max()) <= width + 1e-3
                assert float(det["boxes"][:, 3].max()) <= height + 1e-3
                assert int(det["labels"].min()) >= 0 and int(det["labels"].max()) < NUM_CLASSES
        else:
            out = model(torch.rand(1, 3, *ODD_HW))
            assert out["out"].shape == (1, NUM_CLASSES, *ODD_HW)


def _check_fused(model: nn.Module, detection: bool) -> None:
    # float64: calibrated statistics from a small batch leave a few channels amplifying float32 rounding
    # to ~1e-4; in float64 an exact fusion agrees to ~1e-12, so any real fusion error stands out.
    model.double()
    randomize_batchnorm(model, seed=1)
    randomize_layer_scale(model, seed=1)
    x = torch.rand(2, 3, *CHECK_HW, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    calibrate_batchnorm(raw_outputs(model), x)  # non-trivial statistics that keep activations O(1)
    with torch.no_grad():
        expected = raw_outputs(model.eval())(x)
        fused = reparameterize_task_model(model)
        actual = raw_outputs(fused)(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules()), "a BatchNorm survived fusion"
    pairs = list(zip(actual, expected, strict=True)) if detection else [(actual, expected)]
    for got, ref in pairs:
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
    model.float()


@pytest.mark.parametrize("name", list_task_models())
def test_task_model(name: str) -> None:
    detection = name in list_task_models("detection")
    model = _build(name)
    _check_train_step(model, detection)
    _check_eval(model, detection)
    _check_fused(model, detection)


# Export is checked for every head on one backbone of each kind (MobileOne, MobileNetV4 conv, MobileNetV4
# with attention): the head graphs do not depend on the backbone, and every backbone's own ONNX export is
# verified in test_export.py. All 40 exports take minutes on 2 cores: MOBILEBONE_ALL_TASK_EXPORTS=1 runs
# them all (benchmarks/tasks_export.py records such a sweep).
EXPORT_BACKBONES = ("mobileone_s0", "mobilenetv4_conv_small", "mobilenetv4_hybrid_medium")
EXPORT_NAMES = [
    n
    for n in list_task_models()
    if os.environ.get("MOBILEBONE_ALL_TASK_EXPORTS") or n.endswith(EXPORT_BACKBONES)
]


@pytest.mark.parametrize("name", EXPORT_NAMES)
def test_fused_task_model_exports_to_onnx(name: str, tmp_path) -> None:
    model = _build(name)
    # Statistics of a batch holding the checked input (export_task_onnx's seed 0): non-trivial and well
    # conditioned. The tolerance is 1e-4, or 4x torch's own float32 error vs float64 where a random model
    # amplifies rounding more (the MobileOne-S4 models in the full sweep; see benchmarks/tasks_export.py).
    x = torch.rand(1, 3, *CHECK_HW, generator=torch.Generator().manual_seed(0))
    calibrate_batchnorm(raw_outputs(model), torch.cat([x, torch.rand(1, 3, *CHECK_HW)]))
    rtol = max(1e-4, 4 * float32_error(raw_outputs(reparameterize_task_model(model)), x))
    path = export_task_onnx(model, tmp_path / "m.onnx", input_hw=CHECK_HW, rtol=rtol, seed=0)
    import onnx

    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == (
        ["bbox_regression", "cls_logits"] if name in list_task_models("detection") else ["logits"]
    )
