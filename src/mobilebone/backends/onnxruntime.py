"""ONNX Runtime (CPU execution provider): float32, the plain int8 recipe, and int8 tuned to keep accuracy."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from mobilebone.backends import int8
from mobilebone.backends.engine import Engine, to_tensor


def available() -> bool:
    """Whether ONNX Runtime is installed (it is a core dependency, but may be broken or removed)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _export(model: nn.Module, x: Tensor, workdir: Path) -> Path:
    """The float32 ONNX graph of ``model`` as given (static shape, opset 17, legacy exporter)."""
    from mobilebone.export.onnx import write_onnx

    path = workdir / "onnxruntime.onnx"
    if not path.exists():  # every ONNX Runtime candidate starts from the same float32 graph
        write_onnx(model, x, path, opset=17, dynamic_batch=False)
    return path


def _preprocessed(src: Path) -> Path:
    """Shape inference + graph optimization, as ONNX Runtime's quantization guide advises before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    dst = src.with_name("onnxruntime-pre.onnx")
    if not dst.exists():
        try:
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        except Exception:
            return src
    return dst


def _engine(name: str, precision: str, path: Path, threads: int) -> Engine:
    import onnxruntime as ort

    from mobilebone.export.onnx import ort_session

    session: Any = ort_session(path, threads)
    input_name = session.get_inputs()[0].name

    def infer(batch: Tensor) -> Tensor:
        return to_tensor(session.run(None, {input_name: batch.numpy()})[0])

    info = {"onnxruntime": ort.__version__, "threads": threads, "graph_optimization": "ORT_ENABLE_ALL"}
    return Engine(name, precision, infer, artifacts=[path], info=info)


def build_fp32(model: nn.Module, x: Tensor, calibration: Tensor, threads: int, workdir: Path) -> Engine:
    """ONNX Runtime float32."""
    return _engine("onnxruntime", "fp32", _export(model, x, workdir), threads)


def build_int8(model: nn.Module, x: Tensor, calibration: Tensor, threads: int, workdir: Path) -> Engine:
    """ONNX Runtime int8, the recipe of ``mobilebone export --int8``: static QDQ, MinMax, per-channel, all layers."""
    src = _preprocessed(_export(model, x, workdir))
    dst = workdir / "onnxruntime-int8.onnx"
    int8.quantize(src, dst, calibration, method="MinMax", per_channel=True)
    engine = _engine("onnxruntime-int8", "int8", dst, threads)
    engine.info.update(calibration="MinMax", per_channel=True, calibration_images=len(calibration))
    return engine


def build_int8_tuned(model: nn.Module, x: Tensor, calibration: Tensor, threads: int, workdir: Path) -> Engine:
    """ONNX Runtime int8 with the calibration method and float32 exceptions chosen by ``int8.tune``."""
    src = _preprocessed(_export(model, x, workdir))
    dst = workdir / "onnxruntime-int8-tuned.onnx"
    plan = int8.tune(src, dst, calibration, threads=threads)
    engine = _engine("onnxruntime-int8-tuned", "int8", dst, threads)
    engine.info.update(int8_plan=plan.to_dict())
    return engine
