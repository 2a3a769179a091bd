"""PyTorch → Core ML: an ML Program ``.mlpackage`` of the deploy model, optionally taking images.

Conversion goes through ``torch.jit.trace`` (what coremltools supports best) and falls back to
``torch.export`` when tracing fails (the hybrid MobileNetV4 attention blocks trip the trace path).
Prediction needs macOS; elsewhere the saved package is validated structurally (spec, names, shapes).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mobilebone.export.errors import ExportError
from mobilebone.export.prepare import (
    atomic_output,
    example_input,
    input_hw,
    prepare_for_export,
    reference,
    reference_output,
)
from mobilebone.export.preprocess import fold_normalization, normalize_pixels, random_pixels
from mobilebone.export.verify import (
    ExportReport,
    Reference,
    Verification,
    float64_output,
    verify_output,
)

INPUT_NAME = "input"
IMAGE_NAME = "image"
OUTPUT_NAME = "logits"
MAX_BATCH = 64
# Core ML computes in fp16 on the GPU/Neural Engine: an error of a few 1e-3 of the output range is normal.
RTOL = {"fp32": 1e-3, "fp16": 3e-2}


@dataclass
class CoreMLReport(ExportReport):
    """What ``to_coreml`` did: conversion path, preprocessing baked in, checks run."""

    converter: str = ""
    precision: str = "fp32"
    preprocessing: str = "none (the input is the normalized tensor)"
    structural: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Conversion, preprocessing, structural checks, comparisons (what the CLI prints)."""
        out = [f"converted through {self.converter}, {self.precision} compute precision"]
        out += [f"preprocessing: {self.preprocessing}"]
        out += [f"structure: {check}" for check in self.structural]
        out += [str(c) for c in self.verifications]
        if not any(c.runtime == "coreml" for c in self.verifications):
            out.append("prediction not compared: Core ML runs only on macOS (package validated structurally)")
        return out


def to_coreml(
    model: nn.Module,
    path: str | Path,
    *,
    input_size: int | tuple[int, int] = 224,
    precision: str = "fp32",
    image_input: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    dynamic_batch: bool = False,
    verify: bool = True,
) -> CoreMLReport:
    """Convert the reparameterized ``model`` to a Core ML ML Program at ``path`` (``.mlpackage``), verified.

    Returns how it converted, what preprocessing it baked in and what it checked (structurally on Linux;
    predictions are compared on macOS only).
    """
    if precision not in RTOL:
        raise ExportError(f"precision must be one of {sorted(RTOL)}, got {precision!r}")
    if Path(path).suffix != ".mlpackage":
        raise ExportError(
            f"a Core ML ML Program is a .mlpackage: name the output like {Path(path).stem}.mlpackage"
        )
    if image_input and dynamic_batch:
        raise ExportError(
            "a Core ML image input takes one image at a time: drop --dynamic-batch or the image input"
        )
    report = CoreMLReport(Path(path), precision=precision)
    deploy = prepare_for_export(model)
    x = example_input(deploy, input_size, 1)
    expected = reference_output(deploy, x)
    to_convert: nn.Module = deploy
    scale, bias = 1.0, [0.0] * x.shape[1]
    if image_input:
        cfg = getattr(model, "pretrained_cfg", None) or {}
        mean = list(mean if mean is not None else cfg.get("mean", (0.0, 0.0, 0.0)))
        std = list(std if std is not None else cfg.get("std", (1.0, 1.0, 1.0)))
        if x.shape[1] != 3 or len(mean) != 3 or len(std) != 3:
            raise ExportError(
                "Core ML image inputs are RGB: the model must take 3 channels with 3 means and stds"
            )
        to_convert, scale, bias, report.preprocessing = fold_normalization(deploy, mean, std, x)
        # Check the folding in torch: Core ML's y = scale·pixel + bias fed to the folded model must equal
        # the original model fed (pixel/255 − mean)/std. Both run in float64; what is left is the float32
        # rounding of the folded weights, which the noise-aware tolerance allows (export/verify.py).
        pixels = random_pixels(tuple(x.shape)).to(torch.float64)
        y = pixels * scale + torch.tensor(bias, dtype=torch.float64).view(1, -1, 1, 1)
        normalized = normalize_pixels(pixels, mean, std)
        unfolded = Reference(
            normalized, reference_output(deploy, normalized.float()), float64_output(deploy, normalized)
        )
        folded = float64_output(to_convert, y)
        report.verifications.append(verify_output("torch (preprocessing folded)", unfolded, folded, 1e-4))
    with atomic_output(path) as tmp:
        mlmodel, report.converter = _convert(
            to_convert, x, precision, image_input, scale, bias, dynamic_batch
        )
        try:
            mlmodel.save(str(tmp))
        except Exception as err:
            raise ExportError(f"saving the Core ML package failed: {err}") from err
        num_outputs = int(expected.shape[-1])
        report.structural = validate_package(tmp, input_hw(input_size), x.shape[1], num_outputs, image_input)
        if verify and sys.platform == "darwin":
            report.verifications.append(
                _predict_and_compare(tmp, deploy, x, image_input, mean, std, precision)
            )
    return report


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence coremltools' progress bars, untested-torch warnings and missing-runtime messages on Linux."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    # The progress bars are tqdm writing to sys.stderr; failures still surface as exceptions.
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _convert(
    model: nn.Module,
    x: Tensor,
    precision: str,
    image_input: bool,
    scale: float,
    bias: list[float],
    dynamic_batch: bool,
) -> tuple[Any, str]:
    """Run ``ct.convert`` on a trace, then on ``torch.export`` if the trace path fails."""
    with _quiet():
        import coremltools as ct

        if image_input:
            inputs: list[Any] = [
                ct.ImageType(
                    name=IMAGE_NAME,
                    shape=tuple(x.shape),
                    scale=scale,
                    bias=bias,
                    color_layout=ct.colorlayout.RGB,
                )
            ]
        else:
            batch: Any = ct.RangeDim(1, MAX_BATCH, default=1) if dynamic_batch else 1
            inputs = [ct.TensorType(name=INPUT_NAME, shape=(batch, *x.shape[1:]), dtype=np.float32)]
        options: dict[str, Any] = {
            "inputs": inputs,
            "outputs": [ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
            "convert_to": "mlprogram",
            "compute_precision": ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
            "minimum_deployment_target": ct.target.iOS16,
        }
        errors = []
        try:
            traced = torch.jit.trace(model, (x,), check_trace=False)
            return ct.convert(traced, **options), "torch.jit.trace"
        except Exception as err:
            errors.append(f"torch.jit.trace: {type(err).__name__}: {_first_line(err)}")
        try:
            x_export = x.expand(2, *x.shape[1:]).contiguous() if dynamic_batch else x
            shapes = ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},) if dynamic_batch else None
            program = torch.export.export(model, (x_export,), dynamic_shapes=shapes)
            return ct.convert(program.run_decompositions({}), **options), "torch.export"
        except Exception as err:
            errors.append(f"torch.export: {type(err).__name__}: {_first_line(err)}")
    raise ExportError("Core ML cannot express this model; conversion failed through " + " and ".join(errors))


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def validate_package(
    path: str | Path, size: tuple[int, int], channels: int, num_outputs: int, image_input: bool
) -> list[str]:
    """Load the package's spec without the Core ML runtime and check program type, names and shapes."""
    with _quiet():
        import coremltools as ct

        try:
            spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
        except Exception as err:
            raise ExportError(f"the saved Core ML package does not load: {err}") from err
    checks = []
    if spec.WhichOneof("Type") != "mlProgram":
        raise ExportError(f"expected an ML Program, the package holds a {spec.WhichOneof('Type')}")
    checks.append(f"ML Program, specification version {spec.specificationVersion}")
    (inp,) = spec.description.input
    height, width = size
    if image_input:
        image = inp.type.imageType
        if inp.name != IMAGE_NAME or (image.height, image.width) != (height, width):
            raise ExportError(
                f"Core ML input is {inp.name} {image.height}x{image.width}, expected {height}x{width}"
            )
        checks.append(f"input {inp.name!r}: RGB image {height}x{width}")
    else:
        shape = tuple(inp.type.multiArrayType.shape)
        if inp.name != INPUT_NAME or shape[1:] != (channels, height, width):
            raise ExportError(
                f"Core ML input is {inp.name} {shape}, expected (N, {channels}, {height}, {width})"
            )
        checks.append(f"input {inp.name!r}: float tensor {shape}")
    (out,) = spec.description.output
    out_shape = tuple(out.type.multiArrayType.shape)
    if out.name != OUTPUT_NAME or (out_shape and out_shape[-1] != num_outputs):
        raise ExportError(
            f"Core ML output is {out.name} {out_shape}, expected {OUTPUT_NAME} (N, {num_outputs})"
        )
    checks.append(f"output {out.name!r}: {out_shape or 'shape set at run time'}")
    return checks


def _predict_and_compare(
    path: Path,
    deploy: nn.Module,
    x: Tensor,
    image_input: bool,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    precision: str,
) -> Verification:
    """macOS only: run the package on the CPU and compare with the torch deploy model."""
    with _quiet():
        import coremltools as ct

        mlmodel = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
    if image_input and mean is not None and std is not None:
        from PIL import Image

        pixels = random_pixels(tuple(x.shape))
        image = Image.fromarray(pixels[0].permute(1, 2, 0).numpy(), mode="RGB")
        got = mlmodel.predict({IMAGE_NAME: image})[OUTPUT_NAME]
        normalized = normalize_pixels(pixels.float(), mean, std)
        return verify_output("coreml", reference(deploy, normalized), got, RTOL[precision])
    got = mlmodel.predict({INPUT_NAME: x.numpy()})[OUTPUT_NAME]
    return verify_output("coreml", reference(deploy, x), got, RTOL[precision])
