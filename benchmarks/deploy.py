"""Every deploy candidate of MobileOne-S0 and MNv4-Conv-S in one interleaved run, beside timm's eager model,
plus this CPU's matmul peak (for S0's compute floor).

    .venv/bin/python benchmarks/deploy.py                 # 224 px, 2 threads, random-init models
    .venv/bin/python benchmarks/deploy.py --rounds 30 --out benchmarks/results/deploy/deploy_224.json
    .venv/bin/python benchmarks/deploy.py --models mobileone_s0 --weights mobileone_s0=runs/s0/model_best.safetensors \
        --input-size 48 --out benchmarks/results/deploy/trained_s0_48.json   # weights from `mobilebone train`

With ``--weights MODEL=FILE`` (weights written by ``mobilebone train`` on the embedded set) the model is the
trained one, its candidates are verified on the embedded set's validation split (held out from training)
and int8 is calibrated on its training split, as ``mobilebone deploy`` does for such weights; ratios to
ONNX Runtime fp32 and to timm's fused eager model are written beside each candidate. The compute floor is S0's
operations over a measured peak at the run's threads: torch's float32 and bfloat16 matmul,
``analysis.roofline.measure_hardware`` (the roofline's float32 peak), and ONNX Runtime's own float32
``MatMul`` and int8 ``MatMulInteger`` (uint8 × int8, the kernel of its int8 convolutions).

Random-init models get BatchNorm statistics from generated images (``calibrate_batchnorm``) so activations
stay O(1) as in a trained net; their top-1 agreement only shows that a candidate computes the same function
on generated images, not accuracy on real ones. Each model's candidates, its own PyTorch eager model and
timm's eager model (``timm.utils.reparameterize_model`` applied) are timed in the same shuffled rounds
(median of per-round minima).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import mobilebone
from mobilebone.analysis.roofline import measure_hardware
from mobilebone.deploy import search
from mobilebone.export.calibration import generated_images
from mobilebone.testing import calibrate_batchnorm, randomize_batchnorm

MODELS = ("mobileone_s0", "mobilenetv4_conv_small")
S0_GFLOP = 0.55  # multiply-adds x 2 of MobileOne-S0 at 224 (`mobilebone info mobileone_s0`)


def timm_call(name: str, x: torch.Tensor) -> Any:
    """timm's model of the same name, fused by timm's own reparameterization, as a zero-argument eager call."""
    import timm
    from timm.utils import reparameterize_model

    model = reparameterize_model(timm.create_model(name, pretrained=False).eval())

    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run


def matmul_peak(dtype: torch.dtype, threads: int, n: int = 2048, repeats: int = 10) -> float:
    """Best-of GFLOP/s of an n×n×n torch matmul at ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def ort_matmul_peak(int8: bool, threads: int, n: int = 2048, repeats: int = 10) -> float:
    """Best-of G(FL)OP/s of ONNX Runtime's n×n×n ``MatMul`` (float32) or ``MatMulInteger`` (uint8 × int8,
    the kernel its int8 convolutions use) at ``threads`` threads: the peak the chosen runtime can reach."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        weight = rng.integers(-128, 128, (n, n), dtype=np.int8)
        x: Any = rng.integers(0, 256, (n, n), dtype=np.uint8)
        op, in_type, out_type = "MatMulInteger", TensorProto.UINT8, TensorProto.INT32
    else:
        weight, x = (
            rng.standard_normal((n, n), dtype=np.float32),
            rng.standard_normal((n, n), dtype=np.float32),
        )
        op, in_type, out_type = "MatMul", TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node(op, ["A", "B"], ["C"])],
        "peak",
        [helper.make_tensor_value_info("A", in_type, [n, n])],
        [helper.make_tensor_value_info("C", out_type, [n, n])],
        [numpy_helper.from_array(weight, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        session.run(None, {"A": x})
    best = min(_timed(lambda: session.run(None, {"A": x})) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def parse_weights(pairs: list[str]) -> dict[str, str]:
    """``MODEL=FILE`` arguments as a dict."""
    weights = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--weights takes MODEL=FILE, got {pair!r}")
        weights[name] = path
    return weights


def trained(name: str, weights: str, size: int, held_out: int, num_calibration: int) -> dict[str, Any]:
    """The trained model with held-out (embedded val) and calibration (embedded train) images."""
    from mobilebone.checkpoints import model_for_checkpoint
    from mobilebone.checkpoints.load import read
    from mobilebone.cli.deploy import _embedded_config, _embedded_images

    ckpt = read(weights, arch=name)
    model, _ = model_for_checkpoint(ckpt, name)
    config = _embedded_config(model, ckpt.metadata)
    if config is None:
        raise SystemExit(f"{weights}: not weights trained on the embedded set (no --data run config)")
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    return {
        "model": model,
        "held": _embedded_images("val", held_out, config, cfg, size),
        "calib": _embedded_images("train", num_calibration, config, cfg, size),
        "weights": weights,
        "held_desc": f"embedded set val split, first {held_out} images (held out from training)",
        "calib_desc": f"embedded set train split, first {num_calibration} images",
        "trained_input_size": int(config.get("input_size", size)),
    }


def ratios(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per candidate: speed-up over ORT fp32 and over timm's fused eager model (ratio of medians)."""
    by_name = {c["runtime"]: c for c in report["candidates"]}
    ort = by_name.get("onnxruntime", {}).get("median_ms", math.nan)
    timm_ms = report["references_ms"].get("timm eager, fused", math.nan)
    return {
        c["runtime"]: {
            "median_ms": c["median_ms"],
            "x_vs_ort_fp32": ort / c["median_ms"],
            "x_vs_timm_eager_fused": timm_ms / c["median_ms"],
            "top1_agreement": c.get("top1_agreement", math.nan),
            "status": c["status"],
        }
        for c in report["candidates"]
        if c.get("median_ms") is not None and math.isfinite(c["median_ms"])
    }


LABELS = {"mobileone_s0": "MobileOne-S0", "mobilenetv4_conv_small": "MNv4-Conv-S"}


def candidate_rows(row: dict[str, Any]) -> list[str]:
    """One model's candidates as markdown rows (docs/benchmarks.md): every built one, fastest first, then
    the eager references; the rejected and unavailable ones with their reason."""
    lines = []
    for c in row["candidates"]:
        r = row["ratios"].get(c["runtime"])
        if r is None:
            lines.append(
                f"| {c['runtime']} | {c['precision']} | {c['status']} | – | – | – | – | {c.get('error', '')} |"
            )
            continue
        lines.append(
            f"| {c['runtime']} | {c['precision']} | {c['status']} | {r['median_ms']:.2f} | "
            f"{r['x_vs_ort_fp32']:.2f}× | {r['x_vs_timm_eager_fused']:.2f}× | "
            f"{100 * r['top1_agreement']:.1f} % | {c['max_relative_error']:.1e}"
            + (f"; {c['error']} |" if c.get("error") else " |")
        )
    ort = row["ratios"]["onnxruntime"]["median_ms"]
    timm_ms = row["references_ms"]["timm eager, fused"]
    for name, ms in row["references_ms"].items():
        lines.append(f"| {name} | fp32 | reference | {ms:.2f} | {ort / ms:.2f}× | {timm_ms / ms:.2f}× | | |")
    return lines


def weights_label(weights: str) -> str:
    """A run's weights as the docs say them: trained files by what they are, not by a path on one machine."""
    if weights.endswith(".safetensors"):
        return f"trained weights (`mobilebone train`, embedded set: `{Path(weights).parent.name}/{Path(weights).name}`)"
    return weights


def markdown(results: dict[str, Any]) -> str:
    """Every model's candidate table, as docs/benchmarks.md quotes it."""
    header = (
        "| candidate | precision | status | ms | × ORT fp32 | × timm eager fused | top-1 agreement | "
        "max rel. logit error / why |\n|---|---|---|---:|---:|---:|---:|---|"
    )
    parts = []
    for name, row in results["models"].items():
        parts.append(
            f"**{LABELS.get(name, name)}**, {weights_label(row['weights'])}; {row['num_held_out']} held-out images "
            f"({row['held_out']}), {row['fp32_distinct_top1']} distinct float32 top-1 classes\n"
        )
        parts.append(header + "\n" + "\n".join(candidate_rows(row)) + "\n")
    return "\n".join(parts)


def main() -> None:
    """Run the searches and the peak measurement, write one JSON (or, with --render, print one's tables)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--held-out", type=int, default=64)
    parser.add_argument("--num-calibration", type=int, default=32)
    parser.add_argument("--runtimes", nargs="+", default=None)
    parser.add_argument("--out", default="benchmarks/results/deploy/deploy_224.json")
    parser.add_argument("--weights", nargs="*", default=[], metavar="MODEL=FILE", help="trained weights")
    parser.add_argument(
        "--render", metavar="JSON", help="print a written result's tables as markdown, run nothing"
    )
    args = parser.parse_args()
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text(encoding="utf-8"))))
        return
    weights = parse_weights(args.weights)
    size = (args.input_size, args.input_size)
    load_before = os.getloadavg()
    results: dict[str, Any] = {"command": "benchmarks/deploy.py " + " ".join(os.sys.argv[1:]), "models": {}}
    for name in args.models:
        torch.manual_seed(0)
        if name in weights:
            setup = trained(name, weights[name], args.input_size, args.held_out, args.num_calibration)
            model, held, calib = setup["model"], setup["held"], setup["calib"]
        else:
            model = randomize_batchnorm(mobilebone.create_model(name)).eval()
            calibrate_batchnorm(model, generated_images(16, {}, size, seed=11))
            held = generated_images(args.held_out, {}, size, seed=12)
            calib = generated_images(args.num_calibration, {}, size, seed=13)
            setup = {
                "weights": "random init, BatchNorm statistics from generated images",
                "held_desc": f"{args.held_out} generated images",
                "calib_desc": f"{args.num_calibration} generated images",
            }
        started = time.perf_counter()
        report = search(
            model,
            held,
            calib,
            runtimes=args.runtimes,
            threads=args.threads,
            rounds=args.rounds,
            model_name=name,
            weights=setup["weights"],
            held_out=setup["held_desc"],
            calibration=setup["calib_desc"],
            references={"timm eager, fused": timm_call(name, held[:1])},
        )
        print("\n".join(report.table()), flush=True)
        row = report.to_dict() | {"search_seconds": time.perf_counter() - started}
        row["ratios"] = ratios(row)
        if "trained_input_size" in setup:
            row["trained_input_size"] = setup["trained_input_size"]
        results["models"][name] = row
    peaks = {str(dtype): matmul_peak(dtype, args.threads) for dtype in (torch.float32, torch.bfloat16)}
    hardware = measure_hardware(args.threads)
    peaks["roofline fp32 (1024^2 matmul)"] = 2 * hardware.peak_macs / 1e9
    peaks["onnxruntime MatMul fp32"] = ort_matmul_peak(False, args.threads)
    peaks["onnxruntime MatMulInteger u8s8"] = ort_matmul_peak(True, args.threads)
    results["matmul_peak_gflops"] = peaks
    results["memory_bandwidth_gb_s"] = hardware.bandwidth / 1e9
    # S0's multiply-adds scale with the pixel count (0.55 GFLOP at 224).
    gflop = S0_GFLOP * (args.input_size / 224) ** 2
    results["s0_gflop"] = gflop
    results["s0_floor_ms"] = {k: 1e3 * gflop / v for k, v in peaks.items()}
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    results["cpu_count"] = os.cpu_count()
    print(
        json.dumps({k: results[k] for k in ("matmul_peak_gflops", "s0_floor_ms", "load_average")}, indent=1)
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"wrote {out}; median load {statistics.fmean(load_before):.1f}")


if __name__ == "__main__":
    main()
