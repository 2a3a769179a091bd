"""Every deploy candidate of MobileOne-S0 and MNv4-Conv-S in one interleaved run, beside timm's eager model,
plus this CPU's matmul peak (for S0's compute floor).

    .venv/bin/python benchmarks/deploy.py                 # 224 px, 2 threads, random-init models
    .venv/bin/python benchmarks/deploy.py --rounds 30 --out benchmarks/results/deploy/deploy_224.json

Random-init models get BatchNorm statistics from generated images (``calibrate_batchnorm``) so activations
stay O(1) as in a trained net; their top-1 agreement only shows that a candidate computes the same function
on generated images, not accuracy on real ones. Each model's candidates, its own PyTorch eager model and
timm's eager model (``timm.utils.reparameterize_model`` applied) are timed in the same shuffled rounds
(median of per-round minima).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import mobilebone
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


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    """Run the searches and the peak measurement, write one JSON."""
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
    args = parser.parse_args()
    size = (args.input_size, args.input_size)
    load_before = os.getloadavg()
    results: dict[str, Any] = {"command": "benchmarks/deploy.py " + " ".join(os.sys.argv[1:]), "models": {}}
    for name in args.models:
        torch.manual_seed(0)
        model = randomize_batchnorm(mobilebone.create_model(name)).eval()
        calibrate_batchnorm(model, generated_images(16, {}, size, seed=11))
        held = generated_images(args.held_out, {}, size, seed=12)
        calib = generated_images(args.num_calibration, {}, size, seed=13)
        started = time.perf_counter()
        report = search(
            model,
            held,
            calib,
            runtimes=args.runtimes,
            threads=args.threads,
            rounds=args.rounds,
            model_name=name,
            weights="random init, BatchNorm statistics from generated images",
            held_out=f"{args.held_out} generated images",
            calibration=f"{args.num_calibration} generated images",
            references={"timm eager, fused": timm_call(name, held[:1])},
        )
        print("\n".join(report.table()), flush=True)
        results["models"][name] = report.to_dict() | {"search_seconds": time.perf_counter() - started}
    peaks = {str(dtype): matmul_peak(dtype, args.threads) for dtype in (torch.float32, torch.bfloat16)}
    results["matmul_peak_gflops"] = peaks
    results["s0_gflop"] = S0_GFLOP
    results["s0_floor_ms"] = {k: 1e3 * S0_GFLOP / v for k, v in peaks.items()}
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
