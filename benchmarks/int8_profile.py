"""Where ONNX Runtime int8 gains, and where it does not: per-layer-kind kernel time of a model's float32 and
int8 (the ``export --int8`` recipe) graphs, from ONNX Runtime's own profiler.

    .venv/bin/python benchmarks/int8_profile.py                       # MobileOne-S0 and MNv4-Conv-S at 224
    .venv/bin/python benchmarks/int8_profile.py --threads 1 --out benchmarks/results/int8/profile_224.json

Each graph runs ``--runs`` times with profiling on; every node's kernel time is summed per kind: the op
type, and for convolutions whether it is depthwise (``group`` > 1), its kernel size and stride, so the stem
(3×3, stride 2, three input channels) shows apart from the 1×1 and depthwise layers. Names are taken from
the optimized graph ONNX Runtime runs (its fused ``QLinearConv`` nodes for int8).
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
from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.report import write_json
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
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="mobilebone-int8-profile-") as tmp:
        work = Path(tmp)
        for name in args.models:
            model = mobilebone.reparameterize_model(mobilebone.create_model(name).eval())
            fp32, int8 = work / f"{name}.onnx", work / f"{name}_int8.onnx"
            to_onnx(model, fp32, input_size=args.input_size)
            quantize_onnx(fp32, int8, min_agreement=None, num_eval=8)
            row = {
                p: profile(f, args.input_size, args.threads, args.runs, work)
                for p, f in (("fp32", fp32), ("int8", int8))
            }
            results["models"][name] = row
            print(f"{name} @ {args.input_size} px, {args.threads} thread(s)")
            for precision, kinds in row.items():
                print(f"  {precision}: {sum(kinds.values()):.2f} ms in kernels")
                for kind, ms in kinds.items():
                    if ms >= 0.01:
                        print(f"    {kind:28s} {ms:7.3f} ms")
    results["load_average_after"] = os.getloadavg()
    print(f"wrote {write_json(results, args.out)}")


if __name__ == "__main__":
    main()
