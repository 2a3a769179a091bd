"""PyTorch → ONNX: export the deploy graph with the legacy exporter, check it, verify it in ONNX Runtime."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mobilebone.export.errors import ExportError
from mobilebone.export.prepare import (
    atomic_output,
    example_input,
    prepare_for_export,
    preprocessing_cfg,
    reference,
)
from mobilebone.export.verify import ExportReport, verify_output

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MIN_OPSET = 17
METADATA_KEY = "mobilebone.cfg"
# Half precision keeps ~3 significant digits; errors accumulate over ~50 layers.
FP16_RTOL = 2e-2
# Node types that mean a train-time construct survived into the deploy graph.
FORBIDDEN_OPS = ("BatchNormalization", "Dropout")


def to_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    input_size: int | tuple[int, int] = 224,
    batch_size: int = 1,
    dynamic_batch: bool = False,
    opset: int = 17,
    verify: bool = True,
    rtol: float = 1e-4,
    fp16: bool = False,
) -> ExportReport:
    """Export the reparameterized ``model`` to ONNX at ``path``, checked and verified in ONNX Runtime.

    Raises ``ExportError`` (and leaves no file) if export, ``onnx.checker``, the graph checks (no
    BatchNorm, one Conv node per deploy conv) or the ORT-vs-torch comparison fails: ORT is compared with
    the model in float64 and may be off by ``rtol`` or, for a model whose float32 torch output is itself
    noisier, by ``NOISE_FACTOR`` times that noise (``mobilebone.export.verify``). ``fp16`` stores weights
    and computes in half precision (float32 input and output kept), verified with the looser ``FP16_RTOL``.
    Returns the path written and the verifications run.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: use opset >= {MIN_OPSET}")
    deploy = prepare_for_export(model)
    x = example_input(deploy, input_size, batch_size)
    expected = reference(deploy, x)
    conv_calls = count_conv_calls(deploy, x)
    report = ExportReport(Path(path))
    with atomic_output(path) as tmp:
        write_onnx(deploy, x, tmp, opset=opset, dynamic_batch=dynamic_batch)
        write_metadata(tmp, preprocessing_cfg(model))
        if fp16:
            to_fp16(tmp)
            rtol = max(rtol, FP16_RTOL)
        check_graph(tmp, expected_convs=conv_calls)
        if verify:
            report.verifications.append(verify_output("onnxruntime", expected, run_onnx(tmp, x), rtol))
            if dynamic_batch:
                # A different batch size proves the batch axis is really dynamic.
                x2 = example_input(deploy, input_size, batch_size + 1, seed=1)
                report.verifications.append(
                    verify_output("onnxruntime", reference(deploy, x2), run_onnx(tmp, x2), rtol)
                )
    return report


def write_onnx(deploy: nn.Module, x: Tensor, path: Path, *, opset: int, dynamic_batch: bool) -> None:
    """Serialize ``deploy`` with the TorchScript-based exporter (``dynamo=False``).

    The dynamo exporter needs onnxscript and emits a different graph for the same model; the
    TorchScript-based one is what every check here was written against.
    """
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings from shape checks and the exporter's deprecation
            torch.onnx.export(
                deploy,
                (x,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as err:  # the exporter raises many types; report one
        raise ExportError(f"ONNX export failed: {type(err).__name__}: {str(err).splitlines()[0]}") from err


def to_fp16(path: Path) -> None:
    """Convert an ONNX file to float16 in place, keeping float32 inputs and outputs (ORT's converter)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    try:
        proto = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
        # The converter appends its input/output Casts at the end of the node list; ONNX requires
        # topological order, which ORT's own graph utility restores.
        graph = OnnxModel(proto)
        graph.topological_sort(is_deterministic=True)
    except Exception as err:
        raise ExportError(f"float16 conversion failed: {type(err).__name__}: {err}") from err
    onnx.save(graph.model, str(path))


def write_metadata(path: Path, cfg: dict[str, Any]) -> None:
    """Store the eval preprocessing (architecture, input size, mean/std, …) in the ONNX metadata.

    ``quantize_onnx`` reads it to preprocess calibration images the way the model expects.
    """
    import onnx

    if not cfg:
        return
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(cfg)
    onnx.save(proto, str(path))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The preprocessing config ``to_onnx`` stored in an ONNX file (empty if it has none)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return dict(json.loads(entry.value))
    return {}


def count_conv_calls(model: nn.Module, x: Tensor) -> int:
    """How many convolutions one forward pass of ``model`` runs (hooks, so shared modules count twice)."""
    calls = 0

    def hook(*_: object) -> None:
        """Count one convolution call."""
        nonlocal calls
        calls += 1

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def op_counts(path: str | Path) -> Counter[str]:
    """Node op types of an ONNX file and how often each occurs (including nested subgraphs)."""
    import onnx

    graph = onnx.load(str(path)).graph
    counts: Counter[str] = Counter()
    stack = [graph]
    while stack:
        g = stack.pop()
        for node in g.node:
            counts[node.op_type] += 1
            stack.extend(attr.g for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH)
    return counts


def check_graph(path: str | Path, *, expected_convs: int | None = None) -> Counter[str]:
    """``onnx.checker`` plus the deploy-graph checks: no BatchNorm/Dropout, one Conv per deploy conv."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as err:
        raise ExportError(f"onnx.checker rejected the exported graph: {err}") from err
    counts = op_counts(path)
    left = {op: counts[op] for op in FORBIDDEN_OPS if counts[op]}
    if left:
        raise ExportError(
            f"the exported graph still has train-time nodes {left}; reparameterization is incomplete"
        )
    if expected_convs is not None and counts["Conv"] != expected_convs:
        raise ExportError(
            f"the exported graph has {counts['Conv']} Conv nodes but the deploy model runs {expected_convs} convs"
        )
    return counts


def ort_session(path: str | Path, threads: int | None = None) -> object:
    """An ONNX Runtime CPU inference session (``threads`` intra-op threads; ORT's default when None)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path: str | Path, x: Tensor, threads: int | None = None) -> np.ndarray:
    """Run an ONNX model on ``x`` in ONNX Runtime; returns the first output as a numpy array."""
    session = ort_session(path, threads)
    name = session.get_inputs()[0].name  # type: ignore[attr-defined]
    try:
        return np.asarray(session.run(None, {name: x.numpy()})[0])  # type: ignore[attr-defined]
    except Exception as err:
        raise ExportError(f"ONNX Runtime could not run the exported model: {err}") from err
