"""OpenVINO on the CPU: float32, bfloat16 (where the CPU has it) and int8 through NNCF.

On CPUs with bfloat16 units (AMX, AVX-512 BF16) OpenVINO runs float32 models in bfloat16 unless told
otherwise (its ``INFERENCE_PRECISION_HINT`` defaults to bf16 there), so every candidate sets the hint
explicitly: ``f32`` for float32 and for the non-quantized parts of the int8 model, ``bf16`` for bf16.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from mobilebone.backends.engine import Engine, to_tensor


def available() -> bool:
    """Whether the ``openvino`` package is installed."""
    return importlib.util.find_spec("openvino") is not None


def nncf_available() -> bool:
    """Whether OpenVINO and NNCF (its post-training quantizer) are installed."""
    return available() and importlib.util.find_spec("nncf") is not None


def cpu_capabilities() -> list[str]:
    """OpenVINO's list of what this CPU computes natively (``FP32``, ``BF16``, ``INT8`` …)."""
    import openvino as ov

    return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


def bf16_available() -> bool:
    """Whether OpenVINO is installed and reports native bfloat16 on this CPU."""
    return available() and "BF16" in cpu_capabilities()


def _convert(model: nn.Module, x: Tensor) -> Any:
    import openvino as ov

    return ov.convert_model(model, example_input=x, input=[tuple(x.shape)])


def _compile(ov_model: Any, x: Tensor, precision: str, threads: int, name: str, workdir: Path) -> Engine:
    import openvino as ov

    path = workdir / f"{name}.xml"
    # save_model compresses weights to fp16 by default; keep them as they are.
    ov.save_model(ov_model, str(path), compress_to_fp16=False)
    config = {
        "INFERENCE_PRECISION_HINT": precision,
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
    }
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()

    def infer(batch: Tensor) -> Tensor:
        return to_tensor(request.infer([batch.numpy()])[0])

    actual = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    return Engine(
        name,
        "",
        infer,
        artifacts=[path, path.with_suffix(".bin")],
        info={"openvino": ov.__version__, "inference_precision": actual, "threads": threads},
    )


def build_f32(model: nn.Module, x: Tensor, calibration: Tensor, threads: int, workdir: Path) -> Engine:
    """OpenVINO with float32 inference (the hint overrides the bf16 default of AMX CPUs)."""
    engine = _compile(_convert(model, x), x, "f32", threads, "openvino", workdir)
    engine.precision = "fp32"
    return engine


def build_bf16(model: nn.Module, x: Tensor, calibration: Tensor, threads: int, workdir: Path) -> Engine:
    """OpenVINO with bfloat16 inference: what it silently does by default on CPUs with bf16 units."""
    if not bf16_available():
        raise RuntimeError("this CPU has no native bfloat16 (OpenVINO does not list BF16 for it)")
    engine = _compile(_convert(model, x), x, "bf16", threads, "openvino-bf16", workdir)
    engine.precision = "bf16"
    return engine


def build_int8(model: nn.Module, x: Tensor, calibration: Tensor, threads: int, workdir: Path) -> Engine:
    """OpenVINO int8: NNCF post-training quantization (PERFORMANCE preset: symmetric activations)."""
    import nncf

    items = [calibration[i : i + 1].numpy() for i in range(len(calibration))]
    quantized = nncf.quantize(
        _convert(model, x),
        nncf.Dataset(items),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(items),
    )
    engine = _compile(quantized, x, "f32", threads, "openvino-int8", workdir)
    engine.precision = "int8"
    engine.info.update(nncf=nncf.__version__, calibration_images=len(items))
    return engine
