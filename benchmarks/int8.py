"""int8 vs fp32 in ONNX Runtime: size, latency (same process, interleaved) and top-1 agreement.

    .venv/bin/python benchmarks/int8.py                       # MobileOne-S0 and MNv4-Conv-S, 224 px
    .venv/bin/python benchmarks/int8.py --calibration DIR     # calibrate/check on real images
    .venv/bin/python benchmarks/int8.py --weights mobileone_s0=run/best.safetensors --calibration DIR
    .venv/bin/python benchmarks/int8.py --weights mobileone_s0=runs/s0/model_best.safetensors \
        --calibration embedded --input-size 48      # weights from `mobilebone train`, its validation images

Without --weights a model is random-init (BatchNorm statistics randomized so activations stay O(1)); without
--calibration it is calibrated and checked on generated images; ``--calibration embedded`` uses the
validation images of the embedded shapes set (what `mobilebone train` without --data scores on), written in
index order so that calibration and held-out images both cover every class. Latency and size are real
either way; agreement on random-init models and generated images is only a sanity check of the quantized
graph, not an accuracy statement. The printed table says which weights and images each row used, and its environment
line is captured by this run (``--json`` keeps both with the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import mobilebone
from mobilebone.analysis.environment import capture_environment
from mobilebone.export import to_onnx
from mobilebone.export.quantize import quantize_onnx
from mobilebone.testing import randomize_batchnorm


def default_models() -> list[str]:
    """MobileOne-S0 and the smallest MobileNetV4 conv model, when registered."""
    return ["mobileone_s0", *mobilebone.list_models("mobilenetv4_conv_s*")[:1]]


def parse_weights(pairs: list[str]) -> dict[str, str]:
    """``MODEL=FILE`` arguments as a dict (a bad pair is a one-line error)."""
    weights = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--weights takes MODEL=FILE (or MODEL=arch.tag), got {pair!r}")
        weights[name] = path
    return weights


def write_embedded_images(folder: Path, count: int, num_classes: int = 10) -> Path:
    """The first ``count`` embedded validation images as ``folder/00000.png`` ... (classes interleaved)."""
    from mobilebone.training.synthetic import SyntheticShapes

    folder.mkdir(parents=True, exist_ok=True)
    data = SyntheticShapes("val", count, num_classes=num_classes, seed=0)
    for index in range(len(data)):
        image, _ = data[index]
        image.save(folder / f"{index:05d}.png")
    return folder


def build(name: str, weights: str | None) -> Any:
    """The model to measure: loaded from ``weights`` (any supported checkpoint or tag), else random-init."""
    if weights is None:
        return randomize_batchnorm(mobilebone.create_model(name), seed=0).eval()
    from mobilebone.checkpoints import model_for_checkpoint
    from mobilebone.checkpoints.load import read

    model, _ = model_for_checkpoint(read(weights, arch=name.split(".", 1)[0]), name)
    return model


def measure(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Export one model, quantize it, and compare int8 with fp32."""
    weights = args.weights.get(name)
    model = build(name, weights)
    fp32 = to_onnx(model, work / f"{name}.onnx", input_size=args.input_size).path
    report = quantize_onnx(
        fp32,
        work / f"{name}.int8.onnx",
        calibration=args.calibration,
        num_calibration=args.num_calibration,
        num_eval=args.num_eval,
        latency_runs=args.runs,
        threads=args.threads,
        min_agreement=None,  # a benchmark reports agreement; it does not gate on it
    )
    return {
        "model": name,
        "weights": weights or "random init",
        "input": f"{args.input_size}x{args.input_size}",
        "fp32_mb": report.fp32_bytes / 1e6,
        "int8_mb": report.int8_bytes / 1e6,
        "fp32_ms": report.latency_ms["fp32"],
        "int8_ms": report.latency_ms["int8"],
        "speedup": report.latency_ms["fp32"] / report.latency_ms["int8"],
        "top1_agreement": report.top1_agreement,
        "heldout": report.num_heldout,
        "fp32_distinct_top1": report.fp32_distinct_top1,
        "max_rel_logit_error": report.max_relative_error,
        "calibration": args.calibration_label or report.calibration,
    }


def markdown(rows: list[dict[str, Any]], env: dict[str, Any], args: argparse.Namespace) -> str:
    """The rows and environment as a markdown table."""
    lines = [
        "| model | weights | input | fp32 MB | int8 MB | fp32 ms | int8 ms | int8 speed-up | top-1 agreement | "
        "distinct fp32 top-1 | max rel. logit error |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['weights']} | {r['input']} | {r['fp32_mb']:.2f} | {r['int8_mb']:.2f} | {r['fp32_ms']:.2f} | "
            f"{r['int8_ms']:.2f} | {r['speedup']:.2f}x | {100 * r['top1_agreement']:.1f} % ({r['heldout']}) | "
            f"{r['fp32_distinct_top1']} | {r['max_rel_logit_error']:.3f} |"
        )
    lines += [
        "",
        f"Latency: median of {args.runs} batch-1 runs per model, fp32 and int8 interleaved in one process, "
        f"ONNX Runtime CPU, {env['threads']} threads. Calibration: "
        f"{'; '.join(sorted({r['calibration'] for r in rows}))}. "
        f"Load average before/after: {env['loadavg_before']} / {env['loadavg_after']} "
        "(other processes on this shared machine inflate absolute times; compare the ratio).",
        "",
        "Environment: " + ", ".join(f"{k}={v}" for k, v in env.items() if not k.startswith("loadavg")),
    ]
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run every model, print markdown (and write JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", nargs="*", default=None, help="default: mobileone_s0 + MNv4-Conv-S")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--calibration", default=None, help="image folder, or 'embedded' (default: generated images)"
    )
    parser.add_argument("--num-calibration", type=int, default=32)
    parser.add_argument("--num-eval", type=int, default=128)
    parser.add_argument(
        "--weights",
        nargs="*",
        default=[],
        metavar="MODEL=FILE",
        help="trained weights per model (a checkpoint file or a weight tag); default: random init",
    )
    parser.add_argument("--json", default=None, help="also write rows + environment here")
    args = parser.parse_args()
    args.weights = parse_weights(args.weights)
    env = capture_environment(args.threads, runtime="onnxruntime", precision="fp32 vs int8 (QDQ, U8S8)")
    env["loadavg_before"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory() as work:
        args.calibration_label = None
        if args.calibration == "embedded":
            count = args.num_calibration + args.num_eval
            args.calibration = str(write_embedded_images(Path(work) / "embedded", count))
            args.calibration_label = (
                f"embedded validation images (first {args.num_calibration} calibrate, "
                f"next {args.num_eval} held out)"
            )
        names = args.models or list(args.weights) or default_models()
        rows = [measure(name, args, Path(work)) for name in names]
    env["loadavg_after"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(markdown(rows, env, args))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "environment": env}, indent=2, default=str))


if __name__ == "__main__":
    main()
