"""Quantization-aware fine-tuning vs post-training quantization on trained weights, one JSON.

    .venv/bin/python benchmarks/qat.py --weights runs/s0/model_best.safetensors --epochs 1 \
        --json benchmarks/results/qat/trained_s0_48.json

Runs ``mobilebone.training.qat.finetune`` (the code behind ``mobilebone train --qat``): pt2e QAT with
ExecuTorch's XNNPACK quantizer on the deploy model, lowered to an ExecuTorch ``.pte``; the same model
quantized post-training (pt2e, same quantizer, calibrated on training images) is the baseline. Both int8
programs run in the ExecuTorch runtime and are compared with float32 on the weights' validation split.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from mobilebone.training.qat import finetune


def main() -> None:
    """Fine-tune, compare, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--held-out", type=int, default=None, help="validation images (default: all)")
    parser.add_argument("--json", required=True)
    parser.add_argument("--out", default=None, help="keep the .pte here (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as work:
        report = finetune(
            args.weights,
            args.out or work,
            epochs=args.epochs,
            num_held_out=args.held_out,
            threads=args.threads,
        )
    print("\n".join(report.lines()))
    result = dataclasses.asdict(report) | {
        "command": "benchmarks/qat.py " + " ".join(sys.argv[1:]),
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
