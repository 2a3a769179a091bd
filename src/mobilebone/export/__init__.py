"""Deployment: ONNX, Core ML and TorchScript export of the reparameterized model, each verified; int8.

Heavy runtimes (onnx, onnxruntime, coremltools) are imported inside the functions that use them.
"""

from mobilebone.export.coreml import to_coreml
from mobilebone.export.errors import ExportError
from mobilebone.export.onnx import to_onnx
from mobilebone.export.prepare import prepare_for_export
from mobilebone.export.quantize import QuantizationReport, quantize_onnx
from mobilebone.export.torchscript import to_torchscript
from mobilebone.export.verify import ExportReport

__all__ = [
    "ExportError",
    "ExportReport",
    "QuantizationReport",
    "prepare_for_export",
    "quantize_onnx",
    "to_coreml",
    "to_onnx",
    "to_torchscript",
]
