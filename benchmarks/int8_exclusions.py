"""Would keeping the layers whose int8 kernels gain least in float32 make ONNX Runtime int8 faster?

    .venv/bin/python benchmarks/int8_exclusions.py --out benchmarks/results/int8/exclusions_224.json
    .venv/bin/python benchmarks/int8_exclusions.py --weights RUN/model_best.safetensors   # `mobilebone train`

The kernel profile (``benchmarks/int8_profile.py``) shows MobileOne-S0's stem (three input channels) and its
depthwise 3×3 layers gaining little or nothing in int8. This times, interleaved in one process (median of
per-round minima), ONNX Runtime float32, the all-int8 recipe of ``export --int8`` and the same recipe with
``nodes_to_exclude`` = the stem, the stem + every depthwise layer, and the stem + the stride-1 depthwise
layers, each checked for top-1 agreement with float32. With ``--weights`` (a model trained by ``mobilebone
train`` on the embedded set) the images are that set's held-out validation split and calibration comes from
its training split, as in ``benchmarks/deploy.py``; without, random-init weights with BatchNorm statistics
from generated images, whose agreement says little (near-tied logits). The speed question does not depend
on the weights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import onnx
import torch

import mobilebone
from deploy import trained  # benchmarks/deploy.py, beside this script
from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.report import write_json
from mobilebone.backends import int8, onnxruntime
from mobilebone.backends.engine import logits_of
from mobilebone.export.calibration import generated_images
from mobilebone.export.prepare import prepare_for_export
from mobilebone.testing import calibrate_batchnorm, randomize_batchnorm
from mobilebone.timing import round_minima


def conv_sets(path: Path) -> dict[str, list[str]]:
    """Node names to keep in float32: the stem (first Conv), every depthwise Conv, the stride-1 ones."""
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in convs]
    depthwise = [n.name for n, a in zip(convs, attrs, strict=True) if a.get("group", 1) > 1]
    stride1 = [
        n.name
        for n, a in zip(convs, attrs, strict=True)
        if a.get("group", 1) > 1 and list(a.get("strides", [1, 1])) == [1, 1]
    ]
    stem = [convs[0].name]
    return {"stem": stem, "stem + depthwise": stem + depthwise, "stem + depthwise s1": stem + stride1}


def main() -> None:
    """Build, verify and time the variants; print a table; write one JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="mobileone_s0")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--weights", help="weights trained by `mobilebone train` on the embedded set")
    parser.add_argument("--out", default="benchmarks/results/int8/exclusions_224.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    size = (args.input_size, args.input_size)
    if args.weights:
        setup = trained(args.model, args.weights, args.input_size, 200, 32)
        model, held, calib = setup["model"], setup["held"], setup["calib"]
        images = setup["held_desc"]
    else:
        model = randomize_batchnorm(mobilebone.create_model(args.model)).eval()
        calibrate_batchnorm(model, generated_images(16, {}, size, seed=11))
        held, calib = generated_images(64, {}, size, seed=12), generated_images(32, {}, size, seed=13)
        images = "64 generated images (random-init weights)"
    deploy = prepare_for_export(model)
    x = held[:1].contiguous()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mobilebone-int8-exclusions-") as tmp:
        work = Path(tmp)
        engines = {
            "onnxruntime fp32": onnxruntime.build_fp32(deploy, x, calib, args.threads, work),
            "onnxruntime int8": onnxruntime.build_int8(deploy, x, calib, args.threads, work),
        }
        src = onnxruntime._preprocessed(onnxruntime._export(deploy, x, work))
        excluded = conv_sets(src)
        for label, nodes in excluded.items():
            dst = work / f"int8-{len(nodes)}.onnx"
            int8.quantize(src, dst, calib, method="MinMax", per_channel=True, exclude=nodes)
            engines[f"int8, float32 {label}"] = onnxruntime._engine(label, "int8", dst, args.threads)
        reference = logits_of(engines["onnxruntime fp32"], held).argmax(1)
        agreement = {
            name: float((logits_of(e, held).argmax(1) == reference).float().mean())
            for name, e in engines.items()
        }
        minima = round_minima({n: (lambda e=e: e.infer(x)) for n, e in engines.items()}, rounds=args.rounds)
    base = statistics.median(minima["onnxruntime fp32"])
    rows: dict[str, Any] = {
        name: {
            "median_ms": statistics.median(m),
            "x_vs_ort_fp32": base / statistics.median(m),
            "top1_agreement": agreement[name],
            "float32_nodes": len(excluded.get(name.removeprefix("int8, float32 "), [])),
        }
        for name, m in minima.items()
    }
    print(f"{args.model} @ {args.input_size} px, {args.threads} threads; agreement on {images}")
    print("| variant | float32 convs | ms | × ORT fp32 | top-1 agreement |\n|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['float32_nodes']} | {r['median_ms']:.2f} | {r['x_vs_ort_fp32']:.2f}× | "
            f"{100 * r['top1_agreement']:.1f} % |"
        )
    result = {
        "command": "benchmarks/int8_exclusions.py " + " ".join(sys.argv[1:]),
        "environment": capture_environment(
            args.threads, runtime="onnxruntime", precision="fp32 vs int8 (QDQ)"
        ),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "model": args.model,
        "weights": args.weights or "random init",
        "agreement_images": images,
        "input_size": args.input_size,
        "rounds": args.rounds,
        "variants": rows,
    }
    print(f"wrote {write_json(result, args.out)}")


if __name__ == "__main__":
    main()
