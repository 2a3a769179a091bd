"""int8 post-training quantization of an exported ONNX model with ONNX Runtime, and its report card.

Static quantization, QDQ format, per-channel int8 weights and uint8 activations (U8S8, the fast path
of ONNX Runtime's x86 kernels, VNNI here), activation ranges from calibration on real or generated
images (MinMax by default; ``CALIBRATION_METHODS`` lists the others). The report compares the int8 model with the fp32 one on images not used for calibration, and the
export fails (no file written) when their top-1 agreement falls below ``min_agreement``.

Why 0.95 by default (a policy, not a measurement): an int8 model that changes the top-1 class of more
than 1 image in 20 has lost accuracy a user would notice, and one that is broken (a bad range, a skipped
node) lands far below. Pass ``min_agreement=None`` (CLI: ``--min-agreement 0``) to only report.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from mobilebone.export.calibration import calibration_split
from mobilebone.export.errors import ExportError
from mobilebone.export.onnx import ort_session, read_metadata
from mobilebone.export.prepare import atomic_output
from mobilebone.numerics import max_relative_error

# Top-1 agreement with fp32 on held-out images below which an int8 export fails (see the module docstring).
DEFAULT_MIN_AGREEMENT = 0.95


class QuantizationWarning(UserWarning):
    """Something in the quantization pipeline did not run as intended (the result is still verified)."""


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
    min_agreement: float | None = DEFAULT_MIN_AGREEMENT
    # Why ONNX Runtime's pre-processing (shape inference + optimization) failed, if it did.
    preprocess_error: str = ""

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = []
        if self.preprocess_error:
            out.append(
                "warning: ONNX Runtime pre-processing (quant_pre_process) failed, quantized the graph as "
                f"exported: {self.preprocess_error}"
            )
        out += [
            f"calibration: {self.calibration}",
            f"size: fp32 {self.fp32_bytes / 1e6:.2f} MB → int8 {self.int8_bytes / 1e6:.2f} MB "
            f"({self.fp32_bytes / max(self.int8_bytes, 1):.1f}x smaller)",
        ]
        if self.num_heldout:
            out.append(
                f"top-1 agreement with fp32 on {self.num_heldout} held-out images: {100 * self.top1_agreement:.1f} %"
                f" ({self.fp32_distinct_top1} distinct fp32 classes; max relative logit error "
                f"{self.max_relative_error:.3f})"
                + (f"; required ≥ {100 * self.min_agreement:.1f} %" if self.min_agreement is not None else "")
            )
        if self.latency_ms:
            fp32, int8 = self.latency_ms["fp32"], self.latency_ms["int8"]
            out.append(
                f"ONNX Runtime latency (median, interleaved): fp32 {fp32:.2f} ms, int8 {int8:.2f} ms "
                f"({fp32 / int8:.2f}x)"
            )
        return out


class _Reader:
    """``onnxruntime.quantization.CalibrationDataReader`` over a batch, one image per call, rewindable."""

    def __init__(self, input_name: str, images: Tensor) -> None:
        self._feeds = [{input_name: images[i : i + 1].numpy()} for i in range(len(images))]
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next one-image feed, or ``None`` when all were read."""
        if self._next >= len(self._feeds):
            return None
        self._next += 1
        return self._feeds[self._next - 1]

    def rewind(self) -> None:
        """Start again from the first image (histogram calibrators read the images twice)."""
        self._next = 0


@dataclass(frozen=True)
class CalibrationSpec:
    """One activation-range method: the ``onnxruntime.quantization.CalibrationMethod`` member and the
    ``create_calibrator`` options it runs with."""

    name: str
    help: str
    options: dict[str, Any] = field(default_factory=dict)


# ORT's own Entropy defaults (num_bins = num_quantized_bins = 128) leave its KL search (TensorRT's method,
# ``HistogramCollector.get_entropy_threshold``) exactly one candidate threshold, the full range, so Entropy
# returned MinMax's ranges; and ``quantize_static`` forwards no bin counts from ``extra_options``. So the
# ranges are computed here with ``create_calibrator`` and handed to ``quantize_static`` as its calibration
# cache. 512 histogram bins searched over windows of 128 to 512 bins (thresholds from 1/4 of the largest
# |activation| to all of it): TensorRT's calibrator searches 2048 bins, but ORT's search is a Python loop,
# ~3 s per tensor at 2048 bins (~90 tensors in MobileOne-S0), ~16x less work at 512.
CALIBRATION_METHODS: dict[str, CalibrationSpec] = {
    spec.name: spec
    for spec in (
        CalibrationSpec("MinMax", "min and max of every activation over the calibration images"),
        CalibrationSpec(
            "Percentile",
            "99.999th percentile of |activation| (2048-bin histogram), clipping rare outliers",
            {"num_bins": 2048, "percentile": 99.999},
        ),
        CalibrationSpec(
            "Entropy",
            "threshold minimising the KL divergence between the float and the 128-level histogram",
            {"num_bins": 512, "num_quantized_bins": 128},
        ),
    )
}


def calibration_method(name: str) -> CalibrationSpec:
    """The spec of calibration method ``name`` (an unknown name is a one-line ``ValueError``)."""
    if name not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {name!r}; choose from {', '.join(CALIBRATION_METHODS)}")
    return CALIBRATION_METHODS[name]


def calibrate(src: str | Path, input_name: str, calibration: Tensor, method: str, cache: str | Path) -> Path:
    """Activation ranges of ``src`` on ``calibration`` by ``method``, written as an ORT calibration cache.

    The tensors calibrated are those ``quantize_static`` would calibrate (every op it can quantize).
    """
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    spec = calibration_method(method)
    with tempfile.TemporaryDirectory(prefix="mobilebone-calib-") as work:
        calibrator = create_calibrator(
            Path(src),
            sorted(set(QLinearOpsRegistry) | set(QDQRegistry)),
            augmented_model_path=str(Path(work) / "augmented.onnx"),
            calibrate_method=getattr(CalibrationMethod, spec.name),
            extra_options=dict(spec.options),
        )
        calibrator.collect_data(_Reader(input_name, calibration))
        ranges = calibrator.compute_data()
        del calibrator  # its session holds the augmented model open
    save_tensors_data(ranges, cache)
    return Path(cache)


def quantize_qdq(
    src: str | Path,
    dst: str | Path,
    input_name: str,
    calibration: Tensor,
    *,
    per_channel: bool = True,
    method: str = "MinMax",
    exclude: Sequence[str] = (),
    cache: str | Path | None = None,
) -> None:
    """ONNX Runtime static quantization, QDQ, int8 weights (per channel) and uint8 activations (U8S8).

    ``method`` names a ``CALIBRATION_METHODS`` entry (MinMax, Percentile, Entropy); ``exclude`` lists nodes
    left in float32. ``cache``: a calibration cache file for this ``src`` and ``method``, computed when it
    does not exist and reused when it does (a sensitivity sweep re-quantizes with the same ranges).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    spec = calibration_method(method)
    with tempfile.TemporaryDirectory(prefix="mobilebone-qdq-") as work:
        ranges = Path(cache) if cache is not None else Path(work) / f"{spec.name}.json"
        if not ranges.is_file():
            calibrate(src, input_name, calibration, spec.name, ranges)
        quantize_static(
            str(src),
            str(dst),
            None,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, spec.name),
            nodes_to_exclude=list(exclude),
            calibration_cache_path=str(ranges),
        )


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
    min_agreement: float | None = DEFAULT_MIN_AGREEMENT,
) -> QuantizationReport:
    """Quantize ONNX ``src`` to int8 ``dst`` (static, QDQ, per-channel) calibrated on a folder of images
    (or generated ones when ``calibration`` is None); check it on held-out images; optionally time it.

    ``cfg`` (mean, std, crop_pct, interpolation) defaults to the one ``to_onnx`` stored in ``src``.
    Raises ``ExportError`` and writes nothing when the top-1 agreement with fp32 on the held-out images is
    below ``min_agreement`` (``None``: report only). A failed pre-processing step is a
    ``QuantizationWarning`` and is named in the report.
    """
    if min_agreement is not None and not 0.0 <= min_agreement <= 1.0:
        raise ExportError(f"min_agreement must be in [0, 1], got {min_agreement:g}")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = Path(src)
    if not src.is_file():
        raise ExportError(f"ONNX model {str(src)!r} does not exist")
    input_name, size = input_spec(src)
    cfg = dict(cfg or read_metadata(src))
    calib, held, description = calibration_split(calibration, cfg, size, num_calibration, num_eval)
    with tempfile.TemporaryDirectory() as work, atomic_output(dst) as tmp:
        prepared = Path(work) / "prepared.onnx"
        preprocess_error = ""
        try:
            # Shape inference + graph optimization first, as ONNX Runtime's quantization guide advises.
            quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        except Exception as err:
            preprocess_error = (
                f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
            )
            warnings.warn(
                f"ONNX Runtime pre-processing failed ({preprocess_error}); quantizing the graph as exported",
                QuantizationWarning,
                stacklevel=2,
            )
            prepared = src
        try:
            quantize_qdq(prepared, tmp, input_name, calib, per_channel=per_channel)
        except Exception as err:
            raise ExportError(f"int8 quantization failed: {type(err).__name__}: {err}") from err
        report = QuantizationReport(
            Path(dst),
            src,
            description,
            src.stat().st_size,
            tmp.stat().st_size,
            num_heldout=len(held),
            min_agreement=min_agreement,
            preprocess_error=preprocess_error,
        )
        if len(held):
            fp32_logits, int8_logits = _logits(src, held, threads), _logits(tmp, held, threads)
            report.top1_agreement = float((fp32_logits.argmax(1) == int8_logits.argmax(1)).mean())
            report.fp32_distinct_top1 = len(set(fp32_logits.argmax(1).tolist()))
            report.max_relative_error = max_relative_error(_t(int8_logits), _t(fp32_logits))
        elif min_agreement is not None:
            raise ExportError(
                "min_agreement needs held-out images (num_eval >= 1, or a folder of >= 2 images)"
            )
        if min_agreement is not None and not report.top1_agreement >= min_agreement:
            raise ExportError(
                f"int8 model agrees with fp32 on only {100 * report.top1_agreement:.1f} % of {len(held)} "
                f"held-out images (top-1), below the required {100 * min_agreement:.1f} %; nothing written. "
                "Calibrate on more or more representative images (--calibration), or lower --min-agreement"
            )
        if latency_runs:
            x = (held if len(held) else calib)[:1]
            report.latency_ms = {
                k: float(np.median(v))
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
    """Per-run latencies (ms) of several ONNX models, interleaved run by run (``analysis.timing``)."""
    from mobilebone.timing import time_interleaved

    sessions: dict[str, Any] = {k: ort_session(p, threads) for k, p in models.items()}
    feeds = {k: {s.get_inputs()[0].name: x.numpy()} for k, s in sessions.items()}
    calls = {k: (lambda s=s, f=feeds[k]: s.run(None, f)) for k, s in sessions.items()}
    return time_interleaved(calls, runs=runs, warmup=warmup)
