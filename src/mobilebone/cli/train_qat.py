"""``mobilebone train --qat --weights W``: quantization-aware fine-tuning of trained weights into a verified
int8 ExecuTorch program (``mobilebone.training.qat``). Kept apart from ``train.py``: two flags and a call."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_flags(parser: argparse.ArgumentParser) -> None:
    """``--qat`` and ``--weights`` on the ``train`` parser."""
    parser.add_argument(
        "--qat",
        action="store_true",
        help="quantization-aware fine-tuning of --weights (a `mobilebone train` result) for --epochs "
        "(default 1) at 1%% of the run's lr (or --lr), then an int8 ExecuTorch XNNPACK program checked "
        "against float32 (top-1 agreement on the validation split); writes to --out (default WEIGHTS_DIR/qat)",
    )
    parser.add_argument("--weights", default=None, help="with --qat: the trained weights to fine-tune")


def run(args: argparse.Namespace, given: dict[str, Any]) -> int:
    """Fine-tune, lower, verify, print the report."""
    from mobilebone.cli.common import console as make_console
    from mobilebone.cli.main import CliError
    from mobilebone.training.qat import finetune

    if not args.qat:
        raise CliError("--weights is only used with --qat")
    if not args.weights:
        raise CliError("--qat needs --weights W (weights written by `mobilebone train`)")
    unused = sorted(set(given) - {"epochs", "lr", "out"})
    if unused:
        raise CliError(f"--qat takes its settings from the weights' run; drop {', '.join(unused)}")
    if not Path(args.weights).is_file():
        raise CliError(f"--weights {args.weights}: no such file")
    out = given.get("out") or str(Path(args.weights).parent / "qat")
    report = finetune(args.weights, out, epochs=int(given.get("epochs", 1)), lr=given.get("lr"))
    for line in report.lines():
        make_console().print(line, highlight=False)
    return 0
