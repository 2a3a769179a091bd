"""Export: ONNX for every model, Core ML (structural on Linux), TorchScript, int8, and clean failures."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import mobilebone
from mobilebone.cli.main import main
from mobilebone.export import ExportError, prepare_for_export, to_onnx
from mobilebone.export.verify import float32_noise, float64_output, tolerance
from mobilebone.testing import (
    calibrate_batchnorm,
    max_relative_error,
    randomize_batchnorm,
    randomize_layer_scale,
)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SIZE = 64  # small inputs keep the suite fast; every model accepts >= 32 px
HYBRIDS = mobilebone.list_models("mobilenetv4_hybrid_*")


def _model(name: str, **kwargs: object) -> nn.Module:
    """A model with non-trivial weights: randomized BN and layer scale, BN calibrated (in float64) on
    generated inputs, so activations stay O(1) and the hybrids' attention carries weight."""
    torch.manual_seed(0)
    model = mobilebone.create_model(name, **kwargs)  # type: ignore[arg-type]
    randomize_layer_scale(randomize_batchnorm(model, seed=1), seed=2).double()
    channels = int(kwargs.get("in_chans", 3))  # type: ignore[call-overload]
    images = torch.randn(
        8, channels, SIZE, SIZE, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    return calibrate_batchnorm(model, images).float()


def _plain(name: str) -> nn.Module:
    """Randomized BN statistics only: better conditioned than ``_model``'s (float32 noise ~4e-7 for S0
    against ~1e-5), which half precision and int8 need to be tested for themselves. The calibrated random
    nets amplify rounding ~100x and land at ~3e-2 in fp16 and ~0.6 logit error in int8."""
    return randomize_batchnorm(mobilebone.create_model(name), seed=1).eval()


def _near_tied() -> nn.Module:
    """MNv4-Conv-S with seeded random weights and BN statistics whose logits are nearly tied on some
    generated images: int8 flips the top-1 class of ~20 % of them (81 % agreement on 64, 78 % on 32)."""
    torch.manual_seed(1)
    return _plain("mobilenetv4_conv_small")


def _onnx_ops(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def _run_ort(path: Path, x: Tensor) -> Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def _no_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class Unsupported(nn.Module):
    """A conv followed by an op neither the ONNX exporter (opset 17) nor coremltools can express."""

    in_chans = 3

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x).flatten(1)
        return torch.linalg.svdvals(y.view(y.shape[0], 4, -1))


# ---------------------------------------------------------------- ONNX


@pytest.mark.parametrize("name", mobilebone.list_models())
def test_onnx_every_model_exports_and_matches_train_time_model(name: str, tmp_path: Path) -> None:
    model = _model(name)
    path = to_onnx(model, tmp_path / f"{name}.onnx", input_size=SIZE, dynamic_batch=True).path
    onnx.checker.check_model(str(path), full_check=True)
    ops = _onnx_ops(path)
    deploy = prepare_for_export(model)
    assert "BatchNormalization" not in ops
    assert ops.count("Conv") == sum(isinstance(m, nn.Conv2d) for m in deploy.modules())
    # Dynamic batch: the exported model runs a batch of 3 and matches the *train-time* model end to end,
    # computed in float64; ORT may be off by 1e-4, or by 10x the float32 noise of torch itself if larger.
    x = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(9))
    error = max_relative_error(_run_ort(path, x).double(), float64_output(model, x))
    assert error <= tolerance(1e-4, float32_noise(model, x))
    batch_dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch"


@pytest.mark.parametrize("name", HYBRIDS)
def test_hybrid_export_with_trained_like_layer_scale_verifies_against_float64(
    name: str, tmp_path: Path
) -> None:
    from mobilebone.models.mobilenetv4.blocks import MobileMQABlock

    model = _model(name)
    attention = [m for m in model.modules() if isinstance(m, MobileMQABlock)]
    assert attention and all(float(b.layer_scale.gamma.detach().min()) >= 0.5 for b in attention)
    # The attention branches carry weight (with γ = 1e-5 they did not): silencing them moves the logits.
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        full = model.eval()(x)
        saved = [b.layer_scale.gamma.clone() for b in attention]
        for block in attention:
            block.layer_scale.gamma.zero_()
        silenced = model(x)
        for block, gamma in zip(attention, saved, strict=True):
            block.layer_scale.gamma.copy_(gamma)
    assert max_relative_error(silenced, full) > 1e-2
    (check,) = to_onnx(model, tmp_path / "h.onnx", input_size=SIZE, batch_size=2).verifications
    # ORT against torch in float64, next to torch float32's own error on the same input.
    assert check.noise is not None and check.ok
    assert check.max_relative_error <= max(1e-4, 10 * check.noise)
    assert "vs torch (float64)" in str(check) and "torch float32 itself" in str(check)


def test_verification_tolerance_follows_measured_float32_noise() -> None:
    from mobilebone.export.verify import NOISE_FACTOR, Verification

    quiet = Verification("onnxruntime", (1, 3, 8, 8), 5e-5, 1e-4, noise=1e-6)
    assert quiet.ok and quiet.tolerance == 1e-4
    noisy = Verification("onnxruntime", (1, 3, 8, 8), 5e-4, 1e-4, noise=1e-4)
    assert noisy.ok and noisy.tolerance == pytest.approx(NOISE_FACTOR * 1e-4)
    assert not Verification("onnxruntime", (1, 3, 8, 8), 2e-3, 1e-4, noise=1e-4).ok
    assert not Verification("onnxruntime", (1, 3, 8, 8), 2e-4, 1e-4).ok  # float32 reference: rtol only


def test_onnx_leaves_model_untouched_and_records_preprocessing(tmp_path: Path) -> None:
    from mobilebone.export.onnx import read_metadata

    model = _model("mobileone_s0").train()
    bn_before = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    to_onnx(model, tmp_path / "s0.onnx", input_size=SIZE)
    assert model.training and bn_before > 0
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == bn_before
    cfg = read_metadata(tmp_path / "s0.onnx")
    assert cfg["architecture"] == "mobileone_s0" and cfg["std"] == pytest.approx([0.229, 0.224, 0.225])
    dim = onnx.load(str(tmp_path / "s0.onnx")).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_value == 1  # static batch unless asked


def test_onnx_fp16_is_half_precision_and_verified(tmp_path: Path) -> None:
    report = to_onnx(_plain("mobileone_s0"), tmp_path / "h.onnx", input_size=SIZE, fp16=True)
    checks = report.verifications
    # Verified at fp16's tolerance (a ceiling), and really half precision (not within fp32's 1e-4).
    assert checks and all(c.ok and c.rtol == 2e-2 for c in checks)
    assert all(c.max_relative_error > 1e-5 for c in checks)
    order = [n.name for n in onnx.load(str(report.path)).graph.node]
    onnx.checker.check_model(str(report.path), full_check=True)  # topologically sorted
    assert len(order) == len(set(order))
    weights = onnx.load(str(tmp_path / "h.onnx")).graph.initializer
    assert any(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)


def test_failed_verification_leaves_no_file_and_keeps_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mobilebone.export.onnx as onnx_export

    out = tmp_path / "s0.onnx"
    out.write_bytes(b"previous export")
    real = onnx_export.run_onnx
    monkeypatch.setattr(onnx_export, "run_onnx", lambda p, x, threads=None: real(p, x) * 1.01)
    with pytest.raises(ExportError, match="verification failed"):
        to_onnx(_model("mobileone_s0"), out, input_size=SIZE)
    assert out.read_bytes() == b"previous export"
    assert _no_leftovers(tmp_path) == ["s0.onnx"]


def test_unexpressible_model_is_a_clear_error_without_output(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"ONNX export failed.*svdvals"):
        to_onnx(Unsupported(), tmp_path / "u.onnx", input_size=32)
    assert _no_leftovers(tmp_path) == []


# ---------------------------------------------------------------- TorchScript


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's deprecation notice
def test_torchscript_roundtrip_with_dynamic_batch(tmp_path: Path) -> None:
    from mobilebone.export.torchscript import to_torchscript

    model = _model("mobileone_s1")
    checks = to_torchscript(model, tmp_path / "s1.pt", input_size=SIZE, dynamic_batch=True).verifications
    assert [c.input_shape[0] for c in checks] == [1, 2] and all(c.ok for c in checks)
    loaded = torch.jit.load(str(tmp_path / "s1.pt"))
    x = torch.randn(4, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-4, atol=1e-4 * float(model(x).abs().max()))


# ---------------------------------------------------------------- Core ML

# MobileOne S0-S4, every MNv4 conv variant, and both hybrids (attention converts too).
COREML_MODELS = [
    *mobilebone.list_models("mobileone_*"),
    *mobilebone.list_models("mobilenetv4_conv_*"),
    "mobilenetv4_hybrid_medium",
    "mobilenetv4_hybrid_large",
]


@pytest.mark.parametrize("name", COREML_MODELS)
def test_coreml_converts_to_valid_ml_program(name: str, tmp_path: Path) -> None:
    pytest.importorskip("coremltools")
    from mobilebone.export.coreml import to_coreml

    report = to_coreml(_model(name), tmp_path / "m.mlpackage", input_size=SIZE, precision="fp32")
    assert report.converter == "torch.jit.trace"
    assert report.structural[0].startswith("ML Program")
    assert "(1, 3, 64, 64)" in report.structural[1] and "(1, 1000)" in report.structural[2]
    assert (tmp_path / "m.mlpackage" / "Manifest.json").is_file()
    assert _no_leftovers(tmp_path) == ["m.mlpackage"]


def test_coreml_falls_back_to_torch_export_when_tracing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("coremltools")
    from mobilebone.export.coreml import to_coreml

    def broken_trace(*args: object, **kwargs: object) -> None:
        raise RuntimeError("trace unsupported")

    monkeypatch.setattr(torch.jit, "trace", broken_trace)
    report = to_coreml(_model("mobileone_s0"), tmp_path / "e.mlpackage", input_size=SIZE, dynamic_batch=True)
    assert report.converter == "torch.export"
    assert "(1, 3, 64, 64)" in report.structural[1]


def test_coreml_image_input_bakes_in_normalization(tmp_path: Path) -> None:
    ct = pytest.importorskip("coremltools")
    from mobilebone.export.coreml import to_coreml

    out = tmp_path / "img.mlpackage"
    report = to_coreml(_model("mobileone_s0"), out, input_size=SIZE, precision="fp16", image_input=True)
    # ImageNet std is not uniform: 1/std goes into the stem conv, verified in torch against (x/255 − μ)/σ.
    assert "folded into the first conv" in report.preprocessing
    assert report.verifications[0].ok
    image = ct.models.MLModel(str(out), skip_model_load=True).get_spec().description.input[0].type
    assert image.WhichOneof("Type") == "imageType"
    assert (image.imageType.height, image.imageType.width) == (SIZE, SIZE)


def test_fold_normalization_falls_back_to_explicit_layer() -> None:
    from mobilebone.export.preprocess import ChannelScale, fold_normalization

    model = nn.Sequential(nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1)).eval()  # first op is not a conv
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    x = torch.rand(1, 3, 8, 8)
    folded, scale, bias, how = fold_normalization(model, mean, std, x)
    assert isinstance(folded[0], ChannelScale) and "explicit" in how
    pixels = torch.randint(0, 256, (1, 3, 8, 8)).float()
    y = pixels * scale + torch.tensor(bias).view(1, 3, 1, 1)
    normalized = (pixels / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(folded(y), model(normalized))


def test_coreml_unexpressible_model_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("coremltools")
    from mobilebone.export.coreml import to_coreml

    with pytest.raises(ExportError, match="Core ML cannot express this model"):
        to_coreml(Unsupported(), tmp_path / "u.mlpackage", input_size=32)
    assert _no_leftovers(tmp_path) == []


# ---------------------------------------------------------------- int8


def _image_folder(folder: Path, count: int) -> Path:
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((80, 96), Image.BILINEAR).save(folder / f"{i:02d}.png")
    return folder


def test_quantize_static_int8_from_image_folder(tmp_path: Path) -> None:
    from mobilebone.export.quantize import quantize_onnx

    torch.manual_seed(0)
    fp32 = to_onnx(_plain("mobileone_s0"), tmp_path / "fp32.onnx", input_size=SIZE).path
    images = _image_folder(tmp_path / "images", 12)
    report = quantize_onnx(
        fp32,
        tmp_path / "int8.onnx",
        calibration=images,
        num_calibration=8,
        latency_runs=5,
        min_agreement=None,  # 4 held-out images of a random net: the gate is tested on its own below
    )
    assert report.num_heldout == 4 and "8 images" in report.calibration
    assert report.int8_bytes < report.fp32_bytes / 2  # int8 weights: ~4x smaller
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > ops.count("QuantizeLinear")
    assert any(w.data_type == onnx.TensorProto.INT8 for w in graph.initializer)  # per-channel s8 weights
    assert set(report.latency_ms) == {"fp32", "int8"}
    # The agreement is what the two files say on the held-out images (recomputed here, image by image).
    assert report.top1_agreement == _agreement(fp32, tmp_path / "int8.onnx", images, num_calibration=8)
    # The int8 model approximates the fp32 one (not a broken graph): logits stay close.
    x = torch.randn(1, 3, SIZE, SIZE)
    assert max_relative_error(_run_ort(tmp_path / "int8.onnx", x), _run_ort(fp32, x)) < 0.3


def _agreement(
    fp32: Path, int8: Path, images: Path | None, num_calibration: int, num_eval: int = 64
) -> float:
    """Top-1 agreement of two ONNX files on the held-out images, computed here image by image."""
    from mobilebone.export.calibration import calibration_split
    from mobilebone.export.onnx import read_metadata

    _, held, _ = calibration_split(images, read_metadata(fp32), (SIZE, SIZE), num_calibration, num_eval)
    same = [
        int(_run_ort(fp32, held[i : i + 1]).argmax()) == int(_run_ort(int8, held[i : i + 1]).argmax())
        for i in range(len(held))
    ]
    return sum(same) / len(same)


def test_quantize_static_int8_with_generated_calibration(tmp_path: Path) -> None:
    from mobilebone.export.quantize import quantize_onnx

    fp32 = to_onnx(_near_tied(), tmp_path / "fp32.onnx", input_size=SIZE).path
    int8 = tmp_path / "int8.onnx"
    report = quantize_onnx(fp32, int8, calibration=None, num_calibration=8, num_eval=32, min_agreement=None)
    assert report.calibration == "generated smooth random images"
    assert report.num_heldout == 32 and report.latency_ms == {}  # latency_runs=0: not timed
    assert report.int8_bytes < report.fp32_bytes / 2
    assert report.fp32_distinct_top1 == len(
        {int(_run_ort(fp32, x[None]).argmax()) for x in _heldout(fp32, 8, 32)}
    )
    # This randomized net has near-tied logits on some images: int8 flips a few (below the 95 % default).
    assert report.top1_agreement == _agreement(fp32, int8, None, 8, 32) < 0.95
    assert report.max_relative_error < 0.3  # a working int8 graph, not a broken one
    lines = report.lines()
    assert lines[0] == "calibration: generated smooth random images"
    assert (
        lines[1].startswith("size: fp32 ") and "top-1 agreement with fp32 on 32 held-out images" in lines[2]
    )
    assert "required" not in lines[2]  # min_agreement=None: reported, not enforced


def _heldout(fp32: Path, num_calibration: int, num_eval: int) -> Tensor:
    from mobilebone.export.calibration import calibration_split
    from mobilebone.export.onnx import read_metadata

    return calibration_split(None, read_metadata(fp32), (SIZE, SIZE), num_calibration, num_eval)[1]


def test_int8_below_min_agreement_fails_and_writes_nothing(tmp_path: Path) -> None:
    from mobilebone.export.quantize import DEFAULT_MIN_AGREEMENT, quantize_onnx

    fp32 = to_onnx(_near_tied(), tmp_path / "fp32.onnx", input_size=SIZE).path
    int8 = tmp_path / "int8.onnx"
    int8.write_bytes(b"previous")
    assert DEFAULT_MIN_AGREEMENT == 0.95
    with pytest.raises(
        ExportError, match=r"agrees with fp32 on only \d+\.\d % of 32 held-out.*below the required 95\.0 %"
    ):
        quantize_onnx(fp32, int8, num_calibration=8, num_eval=32)  # the default floor applies
    assert int8.read_bytes() == b"previous" and _no_leftovers(tmp_path) == ["fp32.onnx", "int8.onnx"]
    # A floor the model meets: written, and the report says what was required.
    report = quantize_onnx(fp32, int8, num_calibration=8, num_eval=32, min_agreement=0.5)
    assert report.top1_agreement >= 0.5 and "required ≥ 50.0 %" in report.lines()[2]
    with pytest.raises(ExportError, match="min_agreement must be in"):
        quantize_onnx(fp32, int8, min_agreement=1.5)


def test_a_failing_onnx_preprocessing_step_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime.quantization.shape_inference as shape_inference

    from mobilebone.export.quantize import QuantizationWarning, quantize_onnx

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("shape inference exploded")

    monkeypatch.setattr(shape_inference, "quant_pre_process", broken)
    fp32 = to_onnx(_plain("mobileone_s0"), tmp_path / "fp32.onnx", input_size=SIZE).path
    with pytest.warns(QuantizationWarning, match="pre-processing failed.*shape inference exploded"):
        report = quantize_onnx(
            fp32, tmp_path / "int8.onnx", num_calibration=4, num_eval=8, min_agreement=None
        )
    assert report.preprocess_error == "RuntimeError: shape inference exploded"
    assert report.lines()[0].startswith("warning: ONNX Runtime pre-processing (quant_pre_process) failed")


def _activation_scales(path: Path) -> dict[str, float]:
    """Scale of every activation ``QuantizeLinear`` of a QDQ model (weights are stored quantized)."""
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    return {n.input[0]: float(values[n.input[1]]) for n in graph.node if n.op_type == "QuantizeLinear"}


def test_calibration_method_reaches_onnxruntime(tmp_path: Path) -> None:
    """On one fixed calibration set, MinMax, Percentile and Entropy give different activation scales: the
    method is not dropped on the way to ``quantize_static`` (Entropy with ORT's default bins was MinMax)."""
    from mobilebone.export.onnx import INPUT_NAME, write_onnx
    from mobilebone.export.quantize import CALIBRATION_METHODS, quantize_qdq

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1)).eval()
    src = tmp_path / "toy.onnx"
    write_onnx(model, torch.randn(1, 3, 16, 16), src, opset=17, dynamic_batch=False)
    images = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    images[0, :, 0, 0] = 40.0  # a rare outlier that MinMax keeps and Percentile / Entropy clip
    scales = {}
    for method in CALIBRATION_METHODS:
        quantize_qdq(src, tmp_path / f"{method}.onnx", INPUT_NAME, images, method=method)
        scales[method] = _activation_scales(tmp_path / f"{method}.onnx")
    assert scales["MinMax"].keys() == scales["Percentile"].keys() == scales["Entropy"].keys()
    for method in ("Percentile", "Entropy"):
        assert scales[method] != scales["MinMax"], f"{method} gave MinMax's ranges"
        # Clipping the outlier shrinks the ranges, it never widens them.
        assert all(scales[method][k] <= scales["MinMax"][k] * (1 + 1e-6) for k in scales["MinMax"])


def test_quantize_bad_calibration_folder_is_a_clear_error(tmp_path: Path) -> None:
    from mobilebone.export.quantize import quantize_onnx

    fp32 = to_onnx(_model("mobileone_s0"), tmp_path / "fp32.onnx", input_size=SIZE).path
    with pytest.raises(ExportError, match="does not exist"):
        quantize_onnx(fp32, tmp_path / "int8.onnx", calibration=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no images"):
        quantize_onnx(fp32, tmp_path / "int8.onnx", calibration=tmp_path / "empty")
    assert not (tmp_path / "int8.onnx").exists()


# ---------------------------------------------------------------- CLI


def test_cli_exports_onnx_and_int8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s0.onnx"
    assert main(["export", "mobileone_s0", "--format", "onnx", "--out", str(out), "--input-size", "64"]) == 0
    assert "onnxruntime vs torch" in capsys.readouterr().out and out.is_file()
    images = _image_folder(tmp_path / "images", 6)
    args = [
        "export",
        "mobileone_s0",
        "--format",
        "onnx",
        "--out",
        str(tmp_path / "q.onnx"),
        "--input-size",
        "64",
    ]
    int8 = ["--int8", "--calibration", str(images), "--num-calibration", "4", "--latency-runs", "3"]
    assert main([*args, *int8]) == 0
    printed = capsys.readouterr().out
    assert "calibration: 4 images from" in printed
    assert "top-1 agreement with fp32 on 2 held-out images" in printed
    size = re.search(r"size: fp32 ([\d.]+) MB → int8 ([\d.]+) MB \(([\d.]+)x smaller\)", printed)
    assert size and float(size[2]) < float(size[1]) / 2, printed
    latency = re.search(r"latency \(median, interleaved\): fp32 ([\d.]+) ms, int8 ([\d.]+) ms", printed)
    assert latency and float(latency[1]) > 0 and float(latency[2]) > 0, printed
    # Without a folder: generated calibration images; --latency-runs 0 skips the timing.
    assert main([*args, "--int8", "--latency-runs", "0", "--num-calibration", "4"]) == 0
    printed = capsys.readouterr().out
    assert "calibration: generated smooth random images" in printed and "latency" not in printed


def test_cli_int8_checks_the_calibration_folder_before_exporting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mobilebone.export.onnx as onnx_export

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fp32 export ran before the calibration folder was checked")

    monkeypatch.setattr(onnx_export, "to_onnx", never)
    (tmp_path / "one").mkdir()
    _image_folder(tmp_path / "one" / "imgs", 1)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "q.onnx"
    for folder, message in [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "empty", "no images"),
        (tmp_path / "one", "need at least 2 images"),
    ]:
        argv = ["export", "mobileone_s0", "--format", "onnx", "--out", str(out), "--int8"]
        assert main([*argv, "--calibration", str(folder)]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_export_creates_missing_output_folders(tmp_path: Path) -> None:
    out = tmp_path / "new" / "nested" / "s0.pt"
    assert (
        main(["export", "mobileone_s0", "--format", "torchscript", "--out", str(out), "--input-size", "32"])
        == 0
    )
    assert out.is_file()
    # ... and a failed export removes the folders it created, leaving nothing behind.
    bad = tmp_path / "other" / "dir" / "u.onnx"
    with pytest.raises(ExportError):
        to_onnx(Unsupported(), bad, input_size=32)
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "onnx", "--weights", "missing.safetensors"], "checkpoint not found: missing"),
        (["--format", "onnx", "--weights", "hf-hub:timm/mobileone_s0.apple_in1k"], "are not fetched"),
        (["--format", "onnx", "--int8", "--calibration", "no-such-dir"], "does not exist"),
        (["--format", "onnx", "--int8", "--latency-runs", "-1"], "--latency-runs must be >= 0"),
        (["--format", "torchscript", "--fp16"], "--fp16 is supported for onnx and coreml"),
        (["--format", "coreml", "--int8"], "--int8 quantizes ONNX models"),
        (["--format", "onnx", "--int8", "--min-agreement", "1.5"], "--min-agreement must be between 0 and 1"),
        (["--format", "onnx", "--int8", "--min-agreement", "nan"], "--min-agreement must be between 0 and 1"),
        (["--format", "onnx", "--int8", "--threads", "-2"], "--threads must be >= 1, got -2"),
        (["--format", "onnx", "--int8", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["--format", "onnx", "--int8", "--threads", "1000"], "--threads 1000 is more than the"),
        (["--format", "onnx", "--input-size", "-1"], "--input-size must be between 32 and 2048, got -1"),
        (["--format", "onnx", "--input-size", "0"], "--input-size must be between 32 and 2048, got 0"),
        (["--format", "onnx", "--input-size", "100000"], "got 100000 (one image would need about"),
    ],
)
def test_cli_bad_options_are_one_line_errors(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobilebone.cli.export import FORMATS

    out = tmp_path / f"x{FORMATS[extra[1]].suffix}"
    assert main(["export", "mobileone_s0", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _no_leftovers(tmp_path) == []


def test_cli_unknown_format_is_an_argparse_choice_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "mobileone_s0", "--out", str(tmp_path / "x.tflite"), "--format", "tflite"])
    assert exit_info.value.code == 2
    assert "argument --format: invalid choice: 'tflite'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("out", "extra", "message"),
    [
        ("a.pt", ["--format", "onnx"], "--out 'OUT/a.pt' does not match --format onnx: name it a.onnx"),
        ("a.onnx", ["--format", "coreml"], "does not match --format coreml: name it a.mlpackage"),
        ("a.bin", [], "cannot tell the format from --out 'OUT/a.bin'"),
        ("FILE/a.onnx", [], "cannot write --out 'OUT/FILE/a.onnx': 'OUT/FILE' is a file, not a folder"),
    ],
)
def test_cli_output_path_is_checked_before_any_work(
    out: str, extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "FILE").write_bytes(b"a file where a folder is expected")
    argv = ["export", "mobileone_s0", "--out", str(tmp_path / out), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.replace(str(tmp_path), "OUT")
    assert message in err and len(err.strip().splitlines()) == 1
    assert _no_leftovers(tmp_path) == ["FILE"]


def test_cli_out_dash_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", "mobileone_s0", "--format", "onnx", "--out", "-"]) == 2
    assert "--out '-' is not a file name" in capsys.readouterr().err
    assert _no_leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_cli_read_only_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["export", "mobileone_s0", "--out", str(locked / "a.onnx")]) == 2
        assert f"folder {str(locked)!r} is not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_cli_format_is_inferred_from_the_extension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s0.pt"
    assert main(["export", "mobileone_s0", "--out", str(out), "--input-size", "32"]) == 0
    assert f"wrote {out} (mobileone_s0, torchscript, 32x32)" in capsys.readouterr().out.replace("\n", "")
    loaded = torch.jit.load(str(out))  # a TorchScript archive, not ONNX in a .pt
    assert loaded(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)


def test_cli_int8_below_min_agreement_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mobilebone.cli.export as export_cli

    monkeypatch.setattr(export_cli, "build", lambda args: _near_tied())
    out = tmp_path / "q.onnx"
    argv = ["export", "mobilenetv4_conv_small", "--out", str(out), "--input-size", str(SIZE), "--int8"]
    argv += ["--num-calibration", "8", "--latency-runs", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "below the required 95.0 %; nothing written" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and _no_leftovers(tmp_path) == []
    assert main([*argv, "--min-agreement", "0"]) == 0  # 0 = report only
    assert "top-1 agreement with fp32 on 64 held-out images" in capsys.readouterr().out and out.is_file()


def test_cli_corrupt_weights_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "x.onnx"
    assert main(["export", "mobileone_s0", "--format", "onnx", "--weights", str(bad), "--out", str(out)]) == 2
    assert "cannot load --weights" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------- CLI with --weights


def test_readme_flow_convert_reparameterize_then_export_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # README: `mobilebone convert <apple unfused> s0.safetensors --model mobileone_s0 --deploy`,
    # then `mobilebone export mobileone_s0 --format onnx --weights s0.safetensors`.
    trained = _model("mobileone_s0")
    unfused = tmp_path / "mobileone_s0_unfused.pth"
    torch.save(trained.state_dict(), unfused)
    fused = tmp_path / "s0.safetensors"
    assert main(["convert", str(unfused), str(fused), "--model", "mobileone_s0", "--deploy"]) == 0
    out = tmp_path / "s0.onnx"
    argv = ["export", "mobileone_s0", "--format", "onnx", "--weights", str(fused), "--out", str(out)]
    assert main([*argv, "--input-size", str(SIZE)]) == 0
    assert "onnxruntime vs torch (float64)" in capsys.readouterr().out
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    error = max_relative_error(_run_ort(out, x).double(), float64_output(trained, x))
    assert error <= tolerance(1e-4, float32_noise(trained, x))


def test_cli_export_takes_classes_and_channels_from_the_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobilebone.checkpoints import save_native

    model = _model("mobilenetv4_conv_small", num_classes=10, in_chans=1)
    weights = save_native(model, tmp_path / "gray10.safetensors", model_name="mobilenetv4_conv_small")
    out = tmp_path / "gray10.onnx"
    argv = [
        "export",
        "mobilenetv4_conv_small",
        "--format",
        "onnx",
        "--weights",
        str(weights),
        "--out",
        str(out),
    ]
    assert main([*argv, "--input-size", str(SIZE)]) == 0
    capsys.readouterr()
    x = torch.randn(2, 1, SIZE, SIZE)
    with torch.no_grad():
        expected = model.eval()(x)
    got = _run_ort(out, x[:1])
    assert got.shape == (1, 10)
    assert max_relative_error(got.double(), expected[:1].double()) < 1e-4
    assert main([*argv, "--num-classes", "1000"]) == 2
    assert "the weights have 10 classes, not 1000" in capsys.readouterr().err


def test_cli_export_weight_tag_goes_to_the_hub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx2
    import huggingface_hub

    def refused(url: str, **kwargs: object) -> None:
        raise httpx2.ConnectError("[Errno 111] Connection refused")

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda **kwargs: None)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", refused)
    out = tmp_path / "s0.onnx"
    for weights in ("mobileone_s0.apple_in1k", "apple_in1k"):  # arch.tag, or a bare tag of NAME
        argv = ["export", "mobileone_s0", "--format", "onnx", "--weights", weights, "--out", str(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "cannot get the weights mobileone_s0.apple_in1k" in err and "does not exist" not in err
        assert "--weights /path/to/model.safetensors" in err and "\n" not in err.strip()
    assert _no_leftovers(tmp_path) == []
