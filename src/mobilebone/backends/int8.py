"""ONNX Runtime int8 that keeps accuracy: choose the calibration method, then keep the most sensitive layers
in float32, using only ``onnxruntime.quantization``'s own options (``calibrate_method``, ``per_channel``,
``nodes_to_exclude``, ``calibration_cache_path``).

The calibration images are split: most calibrate, the rest (the *validation* images) score each setting by
how far the int8 logits are from the float32 graph's. The images that finally judge a candidate (the
held-out set of ``mobilebone.deploy.search``) are never used here.

1. Calibration methods (MinMax, Percentile 99.999, Entropy) are tried with per-channel weights; the one with
   the lowest validation error wins.
2. Sensitivity sweep: for every quantizable node (Conv, Gemm, MatMul), the model is quantized with only that
   node left in float32 and the validation error measured (the calibration ranges are computed once and
   reused through ORT's calibration cache). The nodes whose exclusion lowers the error most are excluded,
   at most ``max_excluded`` and only those that lower it by at least ``min_gain`` of the all-int8 error.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from mobilebone.export.quantize import CALIBRATION_METHODS

METHODS = tuple(CALIBRATION_METHODS)  # MinMax, Percentile, Entropy
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")


@dataclass
class LayerSensitivity:
    """Validation error of the int8 model with one node kept in float32."""

    node: str
    op_type: str
    error: float
    gain: float  # all-int8 error minus this error: how much keeping this node in float32 helps


@dataclass
class Int8Plan:
    """The int8 recipe chosen and the evidence for it."""

    method: str = "MinMax"
    per_channel: bool = True
    excluded: list[str] = field(default_factory=list)
    method_errors: dict[str, float] = field(default_factory=dict)
    sensitivity: list[LayerSensitivity] = field(default_factory=list)
    final_error: float = float("nan")
    calibration_images: int = 0
    validation_images: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def quantize(
    src: Path,
    dst: Path,
    calibration: Tensor,
    *,
    method: str = "MinMax",
    per_channel: bool = True,
    exclude: list[str] | None = None,
    cache: Path | None = None,
) -> None:
    """Static int8 QDQ quantization of ``src`` (U8S8: uint8 activations, int8 weights, ORT's x86 fast path)."""
    from mobilebone.export.quantize import calibration_method, input_spec, quantize_qdq

    calibration_method(method)  # an unknown name fails here, in one line
    name, _ = input_spec(src)
    quantize_qdq(
        src,
        dst,
        name,
        calibration,
        per_channel=per_channel,
        method=method,
        exclude=list(exclude or []),
        cache=cache,
    )


def onnx_logits(path: Path, images: Tensor, threads: int) -> np.ndarray:
    """Logits of an ONNX model on ``images``, one image per run."""
    from mobilebone.export.onnx import ort_session

    session: Any = ort_session(path, threads)
    name = session.get_inputs()[0].name
    return np.concatenate(
        [session.run(None, {name: images[i : i + 1].numpy()})[0] for i in range(len(images))]
    )


def mean_relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Mean over images of ``max |a - b| / max |b|`` (per image): a smooth score where agreement is coarse."""
    scale = np.maximum(np.abs(expected).max(axis=1), np.finfo(np.float32).tiny)
    return float((np.abs(actual - expected).max(axis=1) / scale).mean())


def quantizable_nodes(path: Path) -> list[tuple[str, str]]:
    """``(name, op_type)`` of every node ORT would quantize here, in graph order."""
    import onnx

    graph = onnx.load(str(path)).graph
    return [(n.name, n.op_type) for n in graph.node if n.op_type in QUANTIZED_OPS and n.name]


def tune(
    src: Path,
    dst: Path,
    calibration: Tensor,
    *,
    threads: int,
    methods: tuple[str, ...] = METHODS,
    max_excluded: int = 3,
    min_gain: float = 0.05,
    validation_fraction: float = 0.25,
) -> Int8Plan:
    """Quantize ``src`` into ``dst`` with the calibration method and float32 exceptions that keep the int8
    logits closest to float32 on validation images split off ``calibration``; return the plan."""
    if len(calibration) < 2:
        raise ValueError("tuning int8 needs at least 2 calibration images (some calibrate, the others score)")
    held = max(1, round(len(calibration) * validation_fraction))
    calib, valid = calibration[:-held], calibration[-held:]
    reference = onnx_logits(src, valid, threads)
    plan = Int8Plan(calibration_images=len(calib), validation_images=len(valid))
    with tempfile.TemporaryDirectory(prefix="mobilebone-int8-") as name:
        work = Path(name)

        def score(method: str, exclude: list[str]) -> float:
            out = work / "candidate.onnx"
            quantize(src, out, calib, method=method, exclude=exclude, cache=work / f"{method}.json")
            return mean_relative_error(onnx_logits(out, valid, threads), reference)

        plan.method_errors = {m: score(m, []) for m in methods}
        plan.method = min(plan.method_errors, key=lambda m: plan.method_errors[m])
        base = plan.method_errors[plan.method]
        for node, op_type in quantizable_nodes(src):
            error = score(plan.method, [node])
            plan.sensitivity.append(LayerSensitivity(node, op_type, error, base - error))
        plan.sensitivity.sort(key=lambda s: -s.gain)
        plan.excluded = [s.node for s in plan.sensitivity[:max_excluded] if s.gain >= min_gain * base]
        quantize(
            src, dst, calib, method=plan.method, exclude=plan.excluded, cache=work / f"{plan.method}.json"
        )
        plan.final_error = mean_relative_error(onnx_logits(dst, valid, threads), reference)
    return plan
