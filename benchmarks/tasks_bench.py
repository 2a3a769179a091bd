"""Task models vs torchvision's MobileNetV3 detector and segmenters: the run behind docs/benchmarks.md.

Two ``mobilebone bench --task`` invocations (detection at 320 px, segmentation at 512 px), 1 torch thread,
each of the 20 models per task timed interleaved with its torchvision reference, writing
``benchmarks/results/tasks/bench_detection.json`` and ``bench_segmentation.json``. Then it prints the
markdown tables docs/benchmarks.md shows, computed from those files (``--table-only`` skips the run).

    .venv/bin/python benchmarks/tasks_bench.py [--runs 20] [--max-seconds 3] [--task detection] [--table-only]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mobilebone.cli.main import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "tasks"
TASKS = ("detection", "segmentation")


def table(document: dict[str, Any]) -> str:
    """The markdown table of one results file: references first, then ours by latency ratio."""
    s, env = document["settings"], document["environment"]
    lines = [
        f"{s['task']}, {s['input_size']}×{s['input_size']} px, batch {s['batch_size']}, {env['threads']} thread, "
        f"PyTorch {env['torch_version']} eager, {env['cpu']}; timed: {s['timed']}.",
        "",
        "| model | params (M) | MMACs | min ms | reference min ms (same run) | latency ratio (min) | ratio (median) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ref in document["references"].items():
        lines.append(
            f"| torchvision `{name}` | {ref['params'] / 1e6:.2f} | {ref['macs'] / 1e6:,.0f} | | | 1 | 1 |"
        )
    rows = sorted(
        (r for r in document["rows"] if r["status"] == "ok"), key=lambda r: (r["head"], r["ratio_min"])
    )
    for r in rows:
        lines.append(
            f"| `{r['model']}` | {r['params'] / 1e6:.2f} | {r['macs'] / 1e6:,.0f} | {r['min_ms']:.1f} | "
            f"{r['reference_min_ms']:.1f} ({r['reference'].split('_')[0]}) | {r['ratio_min']:.2f} | "
            f"{r['ratio_median']:.2f} |"
        )
    failed = [f"`{r['model']}`: {r['error']}" for r in document["rows"] if r["status"] != "ok"]
    if failed:
        lines += ["", "Failed: " + "; ".join(failed)]
    return "\n".join(lines)


def main() -> int:
    """Run the selected tasks (unless ``--table-only``), then print their tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--task", choices=TASKS, action="append", help="default: both")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    for task in args.task or TASKS:
        if not args.table_only:
            argv = ["bench", "--task", task, "--runs", str(args.runs), "--warmup", str(args.warmup)]
            argv += [
                "--max-seconds",
                str(args.max_seconds),
                "--threads",
                str(args.threads),
                "--out",
                str(args.out),
            ]
            code = cli_main(argv)
            if code == 2:
                return code
        print(table(json.loads((args.out / f"bench_{task}.json").read_text())) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
