"""The full zoo sweep behind docs/benchmarks.md: every model in ONNX Runtime and PyTorch eager.

A thin wrapper over ``mobilebone bench`` with a longer per-model cap and ``--resume`` (so an interrupted
run continues), which then copies the two correlation figures to ``docs/img/``.

    .venv/bin/python benchmarks/zoo.py [--out benchmarks/results/zoo] [--max-seconds 5] [extra bench flags]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mobilebone.cli.main import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("latency_vs_macs.png", "latency_vs_params.png")


def main() -> int:
    """Run the sweep, then publish the figures for the docs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "zoo")
    parser.add_argument("--max-seconds", type=float, default=5.0)
    parser.add_argument("--runtimes", nargs="+", default=["onnxruntime", "eager"])
    parser.add_argument("--docs-img", type=Path, default=ROOT / "docs" / "img")
    args, extra = parser.parse_known_args()
    argv = ["bench", "--out", str(args.out), "--max-seconds", str(args.max_seconds), "--resume"]
    argv += ["--runtimes", *args.runtimes, *extra]
    code = cli_main(argv)
    if code == 0:
        args.docs_img.mkdir(parents=True, exist_ok=True)
        for name in FIGURES:
            shutil.copyfile(args.out / name, args.docs_img / name)
        print(f"copied {', '.join(FIGURES)} to {args.docs_img}; the tables are in {args.out / 'report.md'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
