"""int8 post-training quantization of an exported ONNX model with ONNX Runtime, and its report card.

Static quantization, QDQ format, per-channel int8 weights and uint8 activations (U8S8, the fast path
of ONNX Runtime's x86 kernels, VNNI here), activation ranges from MinMax calibration on real or generated
images. The report compares the int8 model with the fp32 one on images not used for calibration.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from mobilebone.export.calibration import calibration_split
from mobilebone.export.errors import ExportError
from mobilebone.export.onnx import ort_session, read_metadata
from mobilebone.export.prepare import atomic_output
from mobilebone.testing import max_relative_error


@dataclass
class QuantizationReport:
    """Sizes, agreement and latency of an int8 model against the fp32 model it came from."""

    path: Path
    source: Path
    calibration: str
    fp32_bytes: int
    int8_bytes: int
    num_heldout: int = 0
    top1_agreement: float = float("nan")
    # How many different classes fp32 predicts on the held-out set: with one class, agreement says little.
    fp32_distinct_top1: int = 0
    max_relative_error: float = float("nan")
    latency_ms: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"calibration: {self.calibration}",
            f"size: fp32 {self.fp32_bytes / 1e6:.2f} MB → int8 {self.int8_bytes / 1e6:.2f} MB "
            f"({self.fp32_bytes / max(self.int8_bytes, 1):.1f}x smaller)",
        ]
        if self.num_heldout:
            out.append(
                f"top-1 agreement with fp32 on {self.num_heldout} held-out images: {100 * self.top1_agreement:.1f} %"
                f" ({self.fp32_distinct_top1} distinct fp32 classes; max relative logit error "
                f"{self.max_relative_error:.3f})"
            )
        if self.latency_ms:
            fp32, int8 = self.latency_ms["fp32"], self.latency_ms["int8"]
            out.append(
                f"ONNX Runtime latency (median, interleaved): fp32 {fp32:.2f} ms, int8 {int8:.2f} ms "
                f"({fp32 / int8:.2f}x)"
            )
        return out


class _Reader:
    """``onnxruntime.quantization.CalibrationDataReader`` over a batch, one image per call."""

    def __init__(self, input_name: str, images: Tensor) -> None:
        self._feeds = iter([{input_name: images[i : i + 1].numpy()} for i in range(len(images))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next one-image feed, or ``None`` when the batch is exhausted."""
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover - only used by some calibrators
        """Required by the reader protocol; MinMax calibration reads the images once."""


def input_spec(path: str | Path) -> tuple[str, tuple[int, int]]:
    """The input name and static ``(H, W)`` of an ONNX image model."""
    session: Any = ort_session(path, threads=1)
    inp = session.get_inputs()[0]
    height, width = inp.shape[-2:]
    if not (isinstance(height, int) and isinstance(width, int)):
        raise ExportError(f"{path} has a dynamic image size {inp.shape}; export with a fixed --input-size")
    return inp.name, (height, width)


def quantize_onnx(
    src: str | Path,
    dst: str | Path,
    *,
    calibration: str | Path | None = None,
    cfg: dict[str, Any] | None = None,
    num_calibration: int = 32,
    num_eval: int = 64,
    per_channel: bool = True,
    latency_runs: int = 0,
    threads: int | None = None,
) -> QuantizationReport:
    """Quantize ONNX ``src`` to int8 ``dst`` (static, QDQ, per-channel) calibrated on a folder of images
    (or generated ones when ``calibration`` is None); check it on held-out images; optionally time it.

    ``cfg`` (mean, std, crop_pct, interpolation) defaults to the one ``to_onnx`` stored in ``src``.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = Path(src)
    if not src.is_file():
        raise ExportError(f"ONNX model {str(src)!r} does not exist")
    input_name, size = input_spec(src)
    cfg = dict(cfg or read_metadata(src))
    calib, held, description = calibration_split(calibration, cfg, size, num_calibration, num_eval)
    with tempfile.TemporaryDirectory() as work, atomic_output(dst) as tmp:
        prepared = Path(work) / "prepared.onnx"
        try:
            # Shape inference + graph optimization first, as ONNX Runtime's quantization guide advises.
            quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        except Exception:
            prepared = src
        try:
            quantize_static(
                str(prepared),
                str(tmp),
                _Reader(input_name, calib),  # type: ignore[arg-type]
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as err:
            raise ExportError(f"int8 quantization failed: {type(err).__name__}: {err}") from err
        report = QuantizationReport(
            Path(dst), src, description, src.stat().st_size, tmp.stat().st_size, num_heldout=len(held)
        )
        if len(held):
            fp32_logits, int8_logits = _logits(src, held, threads), _logits(tmp, held, threads)
            report.top1_agreement = float((fp32_logits.argmax(1) == int8_logits.argmax(1)).mean())
            report.fp32_distinct_top1 = len(set(fp32_logits.argmax(1).tolist()))
            report.max_relative_error = max_relative_error(_t(int8_logits), _t(fp32_logits))
        if latency_runs:
            x = (held if len(held) else calib)[:1]
            report.latency_ms = {
                k: statistics.median(v)
                for k, v in interleaved_latency({"fp32": src, "int8": tmp}, x, latency_runs, threads).items()
            }
    return report


def _t(a: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(a)).double()


def _logits(path: str | Path, images: Tensor, threads: int | None) -> np.ndarray:
    """Run a model image by image (the quantized graph may have a static batch of 1)."""
    session: Any = ort_session(path, threads)
    name = session.get_inputs()[0].name
    return np.concatenate(
        [session.run(None, {name: images[i : i + 1].numpy()})[0] for i in range(len(images))]
    )


def interleaved_latency(
    models: dict[str, str | Path], x: Tensor, runs: int, threads: int | None = None, warmup: int = 20
) -> dict[str, list[float]]:
    """Per-run latencies (ms) of several ONNX models, alternating between them every run.

    Interleaving puts all models under the same machine conditions (shared hosts drift by ±50 %).
    """
    sessions: dict[str, Any] = {k: ort_session(p, threads) for k, p in models.items()}
    feeds = {k: {s.get_inputs()[0].name: x.numpy()} for k, s in sessions.items()}
    for _ in range(warmup):
        for k, s in sessions.items():
            s.run(None, feeds[k])
    samples: dict[str, list[float]] = {k: [] for k in sessions}
    for i in range(runs):
        order = list(sessions) if i % 2 == 0 else list(reversed(sessions))
        for k in order:
            start = time.perf_counter()
            sessions[k].run(None, feeds[k])
            samples[k].append(1e3 * (time.perf_counter() - start))
    return samples
