"""Training throughput (forward + backward, images/s) of MobileOne-S0's train-time form: mobilebone vs timm.

Both models are built with random init and the same number of classes, put in train mode, and timed in
one process, interleaved: each round runs ``--steps`` forward+backward passes (with a zeroed gradient) of
one model, then of the other, in a shuffled order. The machine is shared and noisy, so the comparison is
the per-round ratio, summarised by its median (on a shared machine only same-run, interleaved numbers
compare). ``--json PATH`` writes the raw per-round rates and the summary (the committed file is
benchmarks/results/training/throughput.json).

    .venv/bin/python benchmarks/train_throughput.py [--batch-size 32] [--input-size 224] [--rounds 12]
        [--steps 3] [--device cpu|cuda] [--channels-last] [--markdown] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from mobilebone import create_model
from mobilebone.analysis.environment import capture_environment


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One forward + backward pass of ``model`` on ``(x, y)`` (gradients cleared first)."""
    criterion = nn.CrossEntropyLoss()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        criterion(model(x), y).backward()

    return step


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (timings must include it)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    """Time both models interleaved and print a summary (markdown table with ``--markdown``)."""
    import timm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=3, help="forward+backward passes per model and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--markdown", action="store_true", help="print a markdown table for docs/benchmarks.md"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the raw rates and summary as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    models = {
        "mobilebone mobileone_s0": create_model("mobileone_s0", num_classes=1000),
        "timm mobileone_s0": timm.create_model("mobileone_s0", num_classes=1000),
    }
    x = torch.randn(args.batch_size, 3, args.input_size, args.input_size, device=device).contiguous(
        memory_format=fmt
    )
    y = torch.randint(0, 1000, (args.batch_size,), device=device)
    steps = {}
    for name, model in models.items():
        model.to(device, memory_format=fmt).train()
        steps[name] = train_step(model, x, y)
        for _ in range(args.warmup):
            steps[name]()
    rates: dict[str, list[float]] = {name: [] for name in models}
    order = list(models)
    for _ in range(args.rounds):
        random.shuffle(order)
        for name in order:
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                steps[name]()
            sync(device)
            rates[name].append(args.steps * args.batch_size / (time.perf_counter() - start))
    ours, theirs = rates["mobilebone mobileone_s0"], rates["timm mobileone_s0"]
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    env = capture_environment(args.threads, runtime=f"eager-{device.type}", deploy=False)
    summary = {
        "batch_size": args.batch_size,
        "input_size": args.input_size,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "channels_last": args.channels_last,
        "median_images_per_s": {name: statistics.median(r) for name, r in rates.items()},
        "max_images_per_s": {name: max(r) for name, r in rates.items()},
        "median_ratio_ours_over_timm": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "environment": env,
        "rates_images_per_s": rates,
        "command": "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:]),
    }
    if args.json:
        from mobilebone.atomic import atomic_open

        with atomic_open(args.json) as handle:
            handle.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    if not args.markdown:
        print(json.dumps(summary, indent=2))
        return
    print("| model (train-time form) | median images/s | best round images/s |")
    print("|---|---:|---:|")
    for name in models:
        print(
            f"| {name} | {summary['median_images_per_s'][name]:.1f} | {summary['max_images_per_s'][name]:.1f} |"
        )
    print(
        f"\nRatio mobilebone / timm per round: median {summary['median_ratio_ours_over_timm']:.3f} "
        f"(range {min(ratios):.3f}–{max(ratios):.3f}); batch {args.batch_size}, {args.input_size}×"
        f"{args.input_size}, {args.rounds} rounds × {args.steps} steps, {env['threads']} threads, "
        f"{env['cpu']}, torch {env.get('torch_version')}, timm {env.get('timm_version')}."
    )


if __name__ == "__main__":
    main()
