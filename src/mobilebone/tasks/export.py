"""ONNX export of a fused task model's raw outputs, verified against torch in ONNX Runtime."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mobilebone.atomic import atomic_path
from mobilebone.export.errors import ExportError
from mobilebone.export.onnx import ort_session
from mobilebone.tasks.raw import raw_outputs
from mobilebone.tasks.reparam import reparameterize_task_model

DETECTION_OUTPUTS = ("bbox_regression", "cls_logits")
SEGMENTATION_OUTPUTS = ("logits",)


@dataclass(frozen=True)
class TaskExport:
    """An exported task model: the file and, per output, ORT's max error relative to torch's largest value."""

    path: Path
    relative_errors: dict[str, float]


def export_task_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    input_hw: tuple[int, int] | None = None,
    opset: int = 17,
    rtol: float = 1e-4,
    seed: int = 0,
) -> Path:
    """Fuse ``model``, export its raw outputs to ONNX at ``path`` and check ORT against torch.

    Detectors export ``(bbox_regression, cls_logits)`` for a batch resized to their input size and scaled
    to [0, 1] (decode against the model's anchors as torchvision's ``postprocess_detections`` does);
    segmenters export the ``"out"`` logits. Raises ``ExportError`` and leaves no file when the outputs
    differ by more than ``rtol`` of their largest magnitude.
    """
    return export_task_onnx_checked(model, path, input_hw=input_hw, opset=opset, rtol=rtol, seed=seed).path


def export_task_onnx_checked(
    model: nn.Module,
    path: str | Path,
    *,
    input_hw: tuple[int, int] | None = None,
    opset: int = 17,
    rtol: float = 1e-4,
    seed: int = 0,
) -> TaskExport:
    """``export_task_onnx``, also returning the measured relative error of every output."""
    fused = raw_outputs(reparameterize_task_model(model)).eval()
    size = int(getattr(model, "input_size", 320))
    height, width = input_hw or (size, size)
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = fused(x)
    expected_list = list(expected) if isinstance(expected, tuple) else [expected]
    names = DETECTION_OUTPUTS if len(expected_list) == 2 else SEGMENTATION_OUTPUTS
    path = Path(path)
    errors: dict[str, float] = {}
    with atomic_path(path) as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TracerWarnings and the legacy exporter's deprecation
                torch.onnx.export(
                    fused,
                    (x,),
                    str(tmp),
                    input_names=["images"],
                    output_names=list(names),
                    opset_version=opset,
                    do_constant_folding=True,
                    dynamo=False,
                )
        except Exception as err:  # the exporter raises many types; report one
            raise ExportError(
                f"ONNX export failed: {type(err).__name__}: {str(err).splitlines()[0]}"
            ) from err
        session = ort_session(tmp)
        got = session.run(None, {"images": x.numpy()})  # type: ignore[attr-defined]
        for name, ref, out in zip(names, expected_list, got, strict=True):
            ref_np = ref.numpy()
            rel = float(np.abs(np.asarray(out) - ref_np).max() / max(float(np.abs(ref_np).max()), 1e-12))
            errors[name] = rel
            if rel > rtol:
                raise ExportError(
                    f"ONNX Runtime output {name!r} differs from torch: max relative error {rel:.2e}"
                )
    return TaskExport(path, errors)
