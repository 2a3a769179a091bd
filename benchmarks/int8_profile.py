"""Where int8 gains, and where it does not: per-layer-kind kernel time of a model's float32 and int8 graphs,
from ONNX Runtime's own profiler (int8: the ``export --int8`` recipe) and from OpenVINO's performance
counters (int8: the ``deploy`` candidate ``openvino-int8``, NNCF), beside this CPU's measured matmul peaks.

    .venv/bin/python benchmarks/int8_profile.py                       # MobileOne-S0 and MNv4-Conv-S at 224
    .venv/bin/python benchmarks/int8_profile.py --threads 1 --out benchmarks/results/int8/profile_224.json

Each graph runs ``--runs`` times with profiling on; every node's kernel time is summed per kind: the op
type, and for convolutions whether it is depthwise (``group`` > 1), its kernel size and stride, so the stem
(3×3, stride 2, three input channels) shows apart from the 1×1 and depthwise layers. Names are taken from
the optimized graph ONNX Runtime runs (its fused ``QLinearConv`` nodes for int8). OpenVINO's counters are
summed per (layer type, kernel) as its CPU plugin names them (e.g. ``brgconv_avx512_1x1_I8``; a kernel
using AMX tiles has ``amx`` in its name). The 1×1 convolutions' share of the model's multiply-adds, over
their time, gives the rate they run at, to set against ONNX Runtime's ``MatMul`` / ``MatMulInteger`` peak
measured in the same run (``benchmarks/deploy.py``'s measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

import mobilebone
from deploy import ort_matmul_peak  # benchmarks/deploy.py, beside this script
from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.report import write_json
from mobilebone.backends import openvino
from mobilebone.export.calibration import generated_images
from mobilebone.export.onnx import to_onnx
from mobilebone.export.quantize import quantize_onnx


def layer_kind(node: onnx.NodeProto) -> str:
    """``Conv dw 3x3 s1``, ``QLinearConv 1x1 s1``, ``Gemm``: the op type and, for convolutions, its shape."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if "kernel_shape" not in attrs:
        return node.op_type
    k = "x".join(str(v) for v in attrs["kernel_shape"])
    stride = attrs.get("strides", [1])[0]
    depthwise = " dw" if attrs.get("group", 1) > 1 else ""
    return f"{node.op_type}{depthwise} {k} s{stride}"


def profile(path: Path, size: int, threads: int, runs: int, work: Path) -> dict[str, float]:
    """Milliseconds per run spent in each layer kind (ONNX Runtime's profiler, kernel time only)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(work / path.stem)
    optimized = work / f"{path.stem}.optimized.onnx"
    options.optimized_model_filepath = str(optimized)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {
        session.get_inputs()[0].name: np.random.default_rng(0).standard_normal((1, 3, size, size), np.float32)
    }
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    kinds = {node.name: layer_kind(node) for node in onnx.load(str(optimized)).graph.node}
    total: Counter[str] = Counter()
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            node = name[: -len("_kernel_time")]
            total[kinds.get(node, event["args"].get("op_name", "?"))] += event["dur"]
    return {kind: us / runs / 1e3 for kind, us in total.most_common()}


def macs_by_kind(path: Path) -> dict[str, int]:
    """Multiply-adds of each convolution kind of a float32 ONNX graph (output size x kernel x input channels)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.value_info, *model.graph.output]
    }
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    total: Counter[str] = Counter()
    for node in model.graph.node:
        if node.op_type == "Conv" and node.output[0] in shapes:
            out, weight = shapes[node.output[0]], weights[node.input[1]]
            total[layer_kind(node)] += int(np.prod(out)) * int(np.prod(weight[1:]))
    return dict(total)


def openvino_profile(
    model: torch.nn.Module, size: int, threads: int, runs: int, work: Path
) -> dict[str, Any]:
    """Milliseconds per run in each (layer type, kernel) of OpenVINO's f32 and NNCF int8 deploy candidates."""
    import openvino as ov

    x = torch.randn(1, 3, size, size)
    calibration = generated_images(32, {}, (size, size), seed=13)
    rows: dict[str, Any] = {}
    for precision, build in (("f32", openvino.build_f32), ("int8", openvino.build_int8)):
        xml = build(model, x, calibration, threads, work).artifacts[0]
        config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "PERF_COUNT": True,
        }
        request = ov.Core().compile_model(str(xml), "CPU", config).create_infer_request()
        feed = [x.numpy()]
        for _ in range(10):
            request.infer(feed)
        total: Counter[str] = Counter()
        for _ in range(runs):
            request.infer(feed)
            for layer in request.profiling_info:
                total[f"{layer.node_type} {layer.exec_type}"] += layer.real_time.total_seconds() * 1e3
        rows[precision] = {kind: ms / runs for kind, ms in total.most_common() if ms > 0}
    return rows


def one_by_one_rate(kinds: dict[str, float], macs: int) -> float:
    """GOP/s (2 x multiply-adds per second) of the 1×1 convolutions, from their summed time in ``kinds``."""
    ms = sum(t for kind, t in kinds.items() if "1x1" in kind)
    return 2 * macs / (ms / 1e3) / 1e9 if ms else float("nan")


GROUPS = (
    "1×1 convolutions",
    "depthwise convolutions",
    "full convolutions (in S0 only the stem)",
    "everything else",
)
COLUMNS = ("fp32", "int8", "openvino f32", "openvino int8")


def group_of(kind: str) -> str:
    """The docs table's row of a layer kind, for ONNX Runtime's and OpenVINO's names alike."""
    if "1x1" in kind:
        return GROUPS[0]
    if " dw " in kind or kind.startswith("GroupConvolution"):
        return GROUPS[1]
    if kind.startswith(("Conv ", "QLinearConv ", "Convolution ")):
        return GROUPS[2]
    return GROUPS[3]


def markdown_rows(row: dict[str, Any]) -> list[str]:
    """The docs table of one model: ms per layer group and in total per column, then the 1×1 rate."""
    sums = {c: {g: 0.0 for g in GROUPS} for c in COLUMNS}
    for column in COLUMNS:
        for kind, ms in row[column].items():
            sums[column][group_of(kind)] += ms
    lines = [f"| {g} | " + " | ".join(f"{sums[c][g]:.2f}" for c in COLUMNS) + " |" for g in GROUPS]
    lines.append("| all kernels | " + " | ".join(f"{sum(sums[c].values()):.2f}" for c in COLUMNS) + " |")
    rates = " | ".join(f"{row['conv_1x1_gops'][c]:.0f}" for c in COLUMNS)
    lines.append(f"| 1×1 convolutions, G(FL)OP/s | {rates} |")
    return lines


def main() -> None:
    """Profile each model's float32 and int8 graphs, print a table, write one JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["mobileone_s0", "mobilenetv4_conv_small"])
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", default="benchmarks/results/int8/profile_224.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    results: dict[str, Any] = {
        "command": "benchmarks/int8_profile.py " + " ".join(os.sys.argv[1:]),
        "environment": capture_environment(
            args.threads, runtime="onnxruntime", precision="fp32 vs int8 (QDQ)"
        ),
        "threads": args.threads,
        "load_average_before": os.getloadavg(),
        "peaks_gops": {
            "onnxruntime MatMul fp32": ort_matmul_peak(False, args.threads),
            "onnxruntime MatMulInteger u8s8": ort_matmul_peak(True, args.threads),
        },
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="mobilebone-int8-profile-") as tmp:
        work = Path(tmp)
        for name in args.models:
            model = mobilebone.reparameterize_model(mobilebone.create_model(name).eval())
            fp32, int8 = work / f"{name}.onnx", work / f"{name}_int8.onnx"
            to_onnx(model, fp32, input_size=args.input_size)
            quantize_onnx(fp32, int8, min_agreement=None, num_eval=8)
            row: dict[str, Any] = {
                p: profile(f, args.input_size, args.threads, args.runs, work)
                for p, f in (("fp32", fp32), ("int8", int8))
            }
            ov_rows = openvino_profile(model, args.input_size, args.threads, args.runs, work)
            row.update({f"openvino {p}": kinds for p, kinds in ov_rows.items()})
            macs = macs_by_kind(fp32)
            one_by_one = sum(m for kind, m in macs.items() if "1x1" in kind)
            results["models"][name] = {
                **row,
                "conv_macs": macs,
                "conv_1x1_gops": {p: one_by_one_rate(kinds, one_by_one) for p, kinds in row.items()},
            }
            print(f"{name} @ {args.input_size} px, {args.threads} thread(s)")
            for precision, kinds in row.items():
                print(f"  {precision}: {sum(kinds.values()):.2f} ms in kernels")
                for kind, ms in kinds.items():
                    if ms >= 0.01:
                        print(f"    {kind:28s} {ms:7.3f} ms")
        for name, row in results["models"].items():
            rates = ", ".join(f"{p} {g:.0f}" for p, g in row["conv_1x1_gops"].items())
            print(f"{name}: 1x1 convolutions run at GOP/s: {rates}")
        print("peaks (GOP/s):", {k: round(v) for k, v in results["peaks_gops"].items()})
        for name, row in results["models"].items():
            print(f"\n{name} (ms; docs/export.md):")
            print("\n".join(markdown_rows(row)))
    results["load_average_after"] = os.getloadavg()
    print(f"wrote {write_json(results, args.out)}")


if __name__ == "__main__":
    main()
