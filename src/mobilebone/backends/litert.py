"""LiteRT (formerly TensorFlow Lite) through ``litert-torch``: float32 ``.tflite``, run by LiteRT's interpreter
with its default XNNPACK delegate.

``litert-torch`` 0.10 converts with ``litert_torch.convert(model, (x,)).export(path)``; it requires
``torch<2.15`` and, through ``xdsl``, ``typing-extensions<4.13``, which is why it is a separate extra
(``mobilebone[litert]``), best installed in its own virtual environment.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from torch import Tensor, nn

from mobilebone.backends.engine import Engine, to_tensor


def available() -> bool:
    """Whether ``litert-torch`` (converter) and ``ai-edge-litert`` (interpreter) are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("litert_torch", "ai_edge_litert"))


def build_fp32(model: nn.Module, x: Tensor, calibration: Tensor, threads: int, workdir: Path) -> Engine:
    """LiteRT float32 (XNNPACK delegate, LiteRT's default on CPU)."""
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter

    path = workdir / "litert.tflite"
    litert_torch.convert(model, (x,)).export(str(path))
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    source, sink = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def infer(batch: Tensor) -> Tensor:
        interpreter.set_tensor(source, batch.numpy())
        interpreter.invoke()
        return to_tensor(interpreter.get_tensor(sink))

    return Engine("litert", "fp32", infer, artifacts=[path], info={"threads": threads})
