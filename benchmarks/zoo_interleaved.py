"""The small end of the zoo timed interleaved: our fast models against the fresher timm peers, same conditions.

A sequential sweep on a shared host ranks models partly by *when* each was measured. Here every model
runs in each round, in a freshly shuffled order (``mobilebone.timing.round_minima``), PyTorch eager, deploy
form, batch 1, 224 px, 1 thread; a model's number is the median of its per-round minima, so ratios between
models are taken under the same load. Writes ``benchmarks/results/zoo_fresh/interleaved_eager.json`` with
the environment and the load average before and after.

    .venv/bin/python benchmarks/zoo_interleaved.py [--rounds 20] [--runs-per-round 5]
    .venv/bin/python benchmarks/zoo_interleaved.py --table-only   # the docs' table from the committed JSON
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch

from mobilebone.analysis.accuracy import AccuracyEntry, default_entries, packaged_accuracy
from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.pareto import pareto_front
from mobilebone.analysis.zoo import resolve_models
from mobilebone.timing import round_minima

ROOT = Path(__file__).resolve().parent.parent
# ≤ ~0.8 GMAC models where the fronts of the sequential sweep disagree with each other.
MODELS = (
    "mobilenetv4_conv_small",
    "mobileone_s0",
    "mobileone_s1",
    "mobilenetv4_conv_medium",
    "torchvision/mobilenet_v3_small",
    "torchvision/mobilenet_v3_large",
    "torchvision/efficientnet_b0",
    "timm/levit_conv_128s",
    "timm/efficientvit_m0",
    "timm/efficientvit_m1",
    "timm/efficientvit_m2",
    "timm/efficientvit_m4",
    "timm/efficientvit_b0",
    "timm/efficientvit_b1",
    "timm/repvit_m0_9",
    "timm/ghostnetv3_100",
    "timm/cpubone_nano",
)


def table(record: dict[str, object]) -> str:
    """Markdown: each model's interleaved latency, its 224-px weights' top-1 and whether it is on the front."""
    models: dict[str, dict[str, float]] = record["models"]  # type: ignore[assignment]
    top1: dict[str, AccuracyEntry] = {}  # each model's first listed weights evaluated at 224 px
    for e in default_entries(packaged_accuracy(), all_tags=True):
        if e.input_size == 224:
            top1.setdefault(e.model, e)
    ranked = [n for n in models if n in top1]
    front = dict(
        zip(
            ranked,
            pareto_front(
                [models[n]["median_of_round_minima_ms"] for n in ranked], [top1[n].top1 for n in ranked]
            ),
            strict=True,
        )
    )
    lines = [
        "| model | weights | top-1 (%) | eager 1-thread ms (interleaved) | front |",
        "|---|---|---:|---:|---|",
    ]
    for name in sorted(models, key=lambda n: models[n]["median_of_round_minima_ms"]):
        entry = top1.get(name)
        lines.append(
            f"| {name} | {entry.tag if entry else 'no published top-1'} | "
            f"{f'{entry.top1:.2f}' if entry else '–'} | {models[name]['median_of_round_minima_ms']:.2f} | "
            f"{'●' if front.get(name) else ''} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Time ``MODELS`` interleaved and write the JSON record (or only print its table)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs-per-round", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/zoo_fresh/interleaved_eager.json"
    )
    parser.add_argument("--table-only", action="store_true", help="print the table of the recorded JSON")
    args = parser.parse_args()
    if args.table_only:
        print(table(json.loads(args.out.read_text(encoding="utf-8"))))
        return 0
    torch.set_num_threads(1)
    x = torch.randn(1, 3, 224, 224)
    models = {e.name: e.deploy().eval() for e in resolve_models(list(MODELS))}

    def call(model: torch.nn.Module) -> object:
        with torch.inference_mode():
            return model(x)

    load_before = os.getloadavg()
    minima = round_minima(
        {name: (lambda m=m: call(m)) for name, m in models.items()},
        rounds=args.rounds,
        runs_per_round=args.runs_per_round,
    )
    record = {
        "tool": "benchmarks/zoo_interleaved.py",
        "runtime": "eager",
        "threads": 1,
        "input_size": 224,
        "rounds": args.rounds,
        "runs_per_round": args.runs_per_round,
        "statistic": "median over rounds of each round's minimum (ms)",
        "environment": capture_environment(1, runtime="eager"),
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "models": {
            name: {"median_of_round_minima_ms": statistics.median(v), "round_minima_ms": v}
            for name, v in minima.items()
        },
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    for name, v in sorted(record["models"].items(), key=lambda kv: kv[1]["median_of_round_minima_ms"]):
        print(f"{name:35s} {v['median_of_round_minima_ms']:8.2f} ms")
    print(table(record))
    print(f"load average {load_before[0]:.1f} → {os.getloadavg()[0]:.1f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
