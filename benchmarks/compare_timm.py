"""mobilebone vs timm, same architecture, same runtime, measured interleaved in one process.

For MobileOne-S0 and MobileNetV4-Conv-S, four contestants are timed in many short rounds, in a shuffled
order each round (the machine is shared and noisy, so only same-run, interleaved comparisons are
trustworthy):

- ours, fused, exported the way ``mobilebone bench`` exports → ONNX Runtime (CPU)
- timm, fused with ``timm.utils.reparameterize_model``, exported the same way → ONNX Runtime
- ours, fused, PyTorch eager
- timm, fused, PyTorch eager (the path a timm user takes by default)

Every call is built by ``mobilebone.analysis.runtimes.prepare``, the ``mobilebone bench`` harness's own
runtimes (ONNX Runtime outputs checked against PyTorch before timing). ``--threads`` sets ONNX Runtime's
intra-op threads, ``--eager-threads`` PyTorch's (both default to 2, so the comparison is at equal threads).
Per round and contestant the minimum of ``--runs-per-round`` runs is kept; ratios are taken per round and
summarized by their median with a 95 % bootstrap confidence interval over rounds.

    .venv/bin/python benchmarks/compare_timm.py [--rounds 100] [--runs-per-round 15] [--threads 2]
        [--eager-threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mobilebone import create_model, reparameterize_model
from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.runtimes import Prepared, prepare
from mobilebone.analysis.zoo import timm_entry
from mobilebone.timing import time_calls, time_interleaved

PAIRS = {"MobileOne-S0": ("mobileone_s0", "mobileone_s0"), "MNv4-Conv-S": ("mobilenetv4_conv_small",) * 2}
CONTESTANTS = ("ours-ort", "timm-ort", "ours-eager", "timm-eager")
RATIOS = {
    "ours ORT / timm ORT": ("ours-ort", "timm-ort"),
    "ours eager / timm eager": ("ours-eager", "timm-eager"),
    "ours ORT / timm eager (the timm default path)": ("ours-ort", "timm-eager"),
}


def contestants(ours_name: str, timm_name: str, workdir: Path, threads: int) -> dict[str, Prepared]:
    """The four timed calls for one architecture, built by ``mobilebone.analysis.runtimes.prepare``.

    That is the ``mobilebone bench`` harness's own code path: the ONNX Runtime calls are exported
    (opset 17, static shape) and checked against PyTorch eager on the very session that is timed (``RuntimeMismatch``
    otherwise); the eager calls run under ``torch.inference_mode`` at PyTorch's current thread setting.
    """
    timm_train = timm_entry(timm_name).build()
    model = create_model(ours_name)
    if ours_name.startswith("mobileone"):
        # Same tensors too: our MobileOne state-dict keys equal timm's (S0 has no SE; timm mobileone.py).
        model.load_state_dict(timm_train.state_dict(), strict=True)
    models = {"ours": reparameterize_model(model), "timm": timm_entry(timm_name).fuse(timm_train)}
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    calls: dict[str, Prepared] = {}
    for runtime, suffix in (("onnxruntime", "ort"), ("eager", "eager")):
        for label, fused in models.items():
            folder = workdir / f"{ours_name}-{label}"
            folder.mkdir(exist_ok=True)
            calls[f"{label}-{suffix}"] = prepare(runtime, fused, x, threads, folder)
    return calls


def interleave(
    calls: dict[str, Callable[[], object]], rounds: int, runs: int, seed: int = 0
) -> dict[str, list[float]]:
    """Per contestant, the minimum latency (ms) of ``runs`` runs in each of ``rounds`` shuffled rounds."""
    rng = random.Random(seed)
    names = list(calls)
    time_interleaved(calls, runs=1, warmup=10)  # warm-up: first calls allocate and pick kernels
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            per_round[name].append(min(time_calls(calls[name], runs=runs, warmup=0)))
    return per_round


def ratio_summary(a: list[float], b: list[float], seed: int = 0) -> dict[str, float]:
    """Median of per-round ratios a/b with a 95 % percentile-bootstrap CI over rounds."""
    from scipy import stats

    ratios = np.asarray(a) / np.asarray(b)
    boot = stats.bootstrap(
        (ratios,), np.median, n_resamples=5000, method="percentile", rng=np.random.default_rng(seed)
    )
    return {
        "median": float(np.median(ratios)),
        "ci_low": float(boot.confidence_interval.low),
        "ci_high": float(boot.confidence_interval.high),
    }


def main() -> None:
    """Run both architectures and print a markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--runs-per-round", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument(
        "--eager-threads",
        type=int,
        default=2,
        help="PyTorch threads for the eager contestants (1 is far less sensitive to a busy machine)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every per-round sample here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.eager_threads)  # ORT sessions get --threads themselves
    results: dict[str, Any] = {
        "environment": capture_environment(args.threads),
        "eager_threads": args.eager_threads,
        "rounds": args.rounds,
        "runs_per_round": args.runs_per_round,
        "architectures": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for label, (ours_name, timm_name) in PAIRS.items():
            prepared = contestants(ours_name, timm_name, Path(tmp), args.threads)
            calls = {name: p.run for name, p in prepared.items()}
            started = time.perf_counter()
            per_round = interleave(calls, args.rounds, args.runs_per_round)
            print(f"{label}: {args.rounds} rounds in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            results["architectures"][label] = {
                "info": {name: p.info for name, p in prepared.items()},
                "per_round_min_ms": per_round,
                "median_of_round_minima_ms": {k: float(np.median(v)) for k, v in per_round.items()},
                "best_ms": {k: float(min(v)) for k, v in per_round.items()},
                "ratios": {
                    name: ratio_summary(per_round[a], per_round[b]) for name, (a, b) in RATIOS.items()
                },
            }
    env = results["environment"]
    print(
        f"CPU {env['cpu']}, ONNX Runtime {env['threads']} threads, eager {args.eager_threads}, torch {env['torch_version']}, timm "
        f"{env.get('timm_version')}, onnxruntime {env.get('onnxruntime_version')}; {args.rounds} rounds × "
        f"{args.runs_per_round} runs per contestant, shuffled order\n"
    )
    print("| architecture | contestant | median of round minima (ms) | best (ms) |")
    print("|---|---|---:|---:|")
    for label, data in results["architectures"].items():
        for name in CONTESTANTS:
            print(
                f"| {label} | {name} | {data['median_of_round_minima_ms'][name]:.2f} | {data['best_ms'][name]:.2f} |"
            )
    print("\n| architecture | ratio | median per-round ratio | 95 % CI |")
    print("|---|---|---:|---|")
    for label, data in results["architectures"].items():
        for name, r in data["ratios"].items():
            print(f"| {label} | {name} | {r['median']:.3f} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
