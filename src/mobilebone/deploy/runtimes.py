"""The deploy runtimes, one typed entry each: how to build it, whether it is installed, how close it must be.

Each entry's ``prepare(model, x, threads, workdir)`` has the signature of the ``prepare_*`` functions of
``mobilebone.analysis.runtimes``: it builds the candidate (int8 ones calibrated on generated images of the
input's size), checks its output against PyTorch eager on ``x`` and returns the timed call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from mobilebone.analysis.runtimes import Prepared, eager_output
from mobilebone.deploy import executorch, litert, onnxruntime, openvino
from mobilebone.deploy.engine import BF16_RTOL, FP32_RTOL, INT8_RTOL, Engine, check_parity

Builder = Callable[[nn.Module, Tensor, Tensor, int, Path], Engine]

# Images int8 runtimes calibrate on when ``prepare`` is used without calibration images.
DEFAULT_CALIBRATION_IMAGES = 16


@dataclass(frozen=True)
class DeployRuntime:
    """One runtime × precision a model can be deployed with."""

    name: str
    device: str
    precision: str
    help: str
    available: Callable[[], bool]
    build: Builder
    tolerance: float
    install: str  # what makes it available

    def prepare(self, model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
        """Build, check against PyTorch eager on ``x`` (``RuntimeMismatch`` beyond ``tolerance``), time ``x``."""
        from mobilebone.export.calibration import generated_images

        size = (int(x.shape[-2]), int(x.shape[-1]))
        calibration = generated_images(DEFAULT_CALIBRATION_IMAGES, {}, size, seed=1)
        engine = self.build(model, x, calibration, threads, workdir)
        error = check_parity(self.name, engine.infer(x), eager_output(model, x), self.tolerance)
        info = dict(engine.info, parity_error=error, parity_rtol=self.tolerance)
        return Prepared(lambda: engine.infer(x), precision=self.precision, info=info)


DEPLOY_RUNTIMES: tuple[DeployRuntime, ...] = (
    DeployRuntime(
        "onnxruntime",
        "cpu",
        "fp32",
        "ONNX Runtime, float32",
        onnxruntime.available,
        onnxruntime.build_fp32,
        FP32_RTOL,
        "pip install onnxruntime",
    ),
    DeployRuntime(
        "onnxruntime-int8",
        "cpu",
        "int8",
        "ONNX Runtime int8 (static QDQ, MinMax calibration, per-channel weights, every layer)",
        onnxruntime.available,
        onnxruntime.build_int8,
        INT8_RTOL,
        "pip install onnxruntime",
    ),
    DeployRuntime(
        "onnxruntime-int8-tuned",
        "cpu",
        "int8",
        "ONNX Runtime int8, calibration method chosen and the most sensitive layers kept float32",
        onnxruntime.available,
        onnxruntime.build_int8_tuned,
        INT8_RTOL,
        "pip install onnxruntime",
    ),
    DeployRuntime(
        "openvino",
        "cpu",
        "fp32",
        "OpenVINO, float32 (INFERENCE_PRECISION_HINT=f32)",
        openvino.available,
        openvino.build_f32,
        FP32_RTOL,
        "pip install 'mobilebone[deploy]'",
    ),
    DeployRuntime(
        "openvino-bf16",
        "cpu",
        "bf16",
        "OpenVINO, bfloat16 (its silent default on CPUs with bf16 units; only where the CPU has them)",
        openvino.bf16_available,
        openvino.build_bf16,
        BF16_RTOL,
        "a CPU with AMX or AVX-512 BF16",
    ),
    DeployRuntime(
        "openvino-int8",
        "cpu",
        "int8",
        "OpenVINO int8, quantized by NNCF (PERFORMANCE preset)",
        openvino.nncf_available,
        openvino.build_int8,
        INT8_RTOL,
        "pip install 'mobilebone[deploy]'",
    ),
    DeployRuntime(
        "executorch-xnnpack",
        "cpu",
        "fp32",
        "ExecuTorch .pte, every op delegated to XNNPACK, float32",
        executorch.available,
        executorch.build_fp32,
        FP32_RTOL,
        "pip install 'mobilebone[deploy]'",
    ),
    DeployRuntime(
        "executorch-xnnpack-int8",
        "cpu",
        "int8",
        "ExecuTorch .pte, XNNPACK delegate, int8 (pt2e with XNNPACKQuantizer, per-channel)",
        executorch.available,
        executorch.build_int8,
        INT8_RTOL,
        "pip install 'mobilebone[deploy]'",
    ),
    DeployRuntime(
        "litert",
        "cpu",
        "fp32",
        "LiteRT (TFLite) via litert-torch, float32, XNNPACK delegate",
        litert.available,
        litert.build_fp32,
        FP32_RTOL,
        "pip install 'mobilebone[litert]' (own venv)",
    ),
)

DEPLOY_RUNTIME_NAMES = tuple(r.name for r in DEPLOY_RUNTIMES)


def get_runtime(name: str) -> DeployRuntime:
    """The entry called ``name``; ``ValueError`` naming the choices otherwise."""
    for runtime in DEPLOY_RUNTIMES:
        if runtime.name == name:
            return runtime
    raise ValueError(f"unknown deploy runtime {name!r}; choose from {', '.join(DEPLOY_RUNTIME_NAMES)}")


def _prepare(name: str) -> Callable[[nn.Module, Tensor, int, Path], Prepared]:
    def prepare(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
        return get_runtime(name).prepare(model, x, threads, workdir)

    prepare.__doc__ = f"Prepare a timed, verified call of {name}."
    return prepare


# Standalone adapters with the signature of ``mobilebone.analysis.runtimes.prepare_*``.
prepare_onnxruntime_int8 = _prepare("onnxruntime-int8")
prepare_onnxruntime_int8_tuned = _prepare("onnxruntime-int8-tuned")
prepare_openvino = _prepare("openvino")
prepare_openvino_bf16 = _prepare("openvino-bf16")
prepare_openvino_int8 = _prepare("openvino-int8")
prepare_executorch_xnnpack = _prepare("executorch-xnnpack")
prepare_executorch_xnnpack_int8 = _prepare("executorch-xnnpack-int8")
prepare_litert = _prepare("litert")
