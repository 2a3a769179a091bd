"""``mobilebone export``: ONNX, Core ML or TorchScript of the deploy model, verified; optional int8."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

FORMATS = ("onnx", "coreml", "torchscript")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export", help="export the reparameterized model to ONNX / Core ML / TorchScript, verified"
    )
    parser.add_argument("name", metavar="NAME", help="model name (see `mobilebone list`)")
    parser.add_argument("--format", required=True, help=f"one of: {', '.join(FORMATS)}")
    parser.add_argument("--out", required=True, help="output file (.onnx, .mlpackage, .pt)")
    parser.add_argument("--weights", default=None, help="checkpoint to load (default: random init)")
    parser.add_argument("--num-classes", type=int, default=1000, help="classifier size (default: 1000)")
    parser.add_argument("--input-size", type=int, default=None, help="square input side (default: model's)")
    parser.add_argument("--dynamic-batch", action="store_true", help="make the batch axis dynamic")
    parser.add_argument("--fp16", action="store_true", help="half precision (ONNX weights, Core ML compute)")
    parser.add_argument(
        "--image-input", action="store_true", help="Core ML: RGB image input, mean/std baked in"
    )
    parser.add_argument("--int8", action="store_true", help="ONNX: static int8 quantization (ONNX Runtime)")
    parser.add_argument(
        "--calibration", default=None, help="folder of images for --int8 (default: generated)"
    )
    parser.add_argument(
        "--num-calibration", type=int, default=32, help="images used to calibrate (rest: check)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime threads for the --int8 timing"
    )
    parser.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    """Reject option combinations the chosen format cannot honour, before any work is done."""
    if args.format not in FORMATS:
        raise ValueError(f"unknown format {args.format!r}; use one of: {', '.join(FORMATS)}")
    if args.int8 and args.format != "onnx":
        raise ValueError("--int8 quantizes ONNX models: use --format onnx")
    if args.int8 and args.fp16:
        raise ValueError("--int8 and --fp16 exclude each other")
    if args.calibration and not args.int8:
        raise ValueError("--calibration is for --int8")
    if args.image_input and args.format != "coreml":
        raise ValueError("--image-input is for --format coreml")
    if args.fp16 and args.format == "torchscript":
        raise ValueError("--fp16 is supported for onnx and coreml; TorchScript exports float32")
    if args.input_size is not None and args.input_size < 32:
        raise ValueError(f"--input-size must be at least 32, got {args.input_size}")


def build(args: argparse.Namespace) -> nn.Module:
    """Create the model and load ``--weights`` into it (a bad checkpoint is a one-line error)."""
    from pathlib import Path

    import mobilebone

    model = mobilebone.create_model(args.name, num_classes=args.num_classes)
    if args.weights:
        if (
            not Path(args.weights).exists()
            and "://" not in args.weights
            and not args.weights.startswith("hf-hub:")
        ):
            raise ValueError(f"--weights {args.weights!r} does not exist")
        load = getattr(mobilebone, "load_checkpoint", None)
        if load is None:
            raise ValueError("this install has no checkpoint loader (mobilebone.load_checkpoint)")
        try:
            model = load(model, args.weights) or model
        except Exception as err:
            raise ValueError(f"cannot load --weights {args.weights!r} into {args.name}: {err}") from err
    return model


def run(args: argparse.Namespace) -> int:
    """Export, verify, print what was checked."""
    import tempfile
    from pathlib import Path

    from mobilebone.cli.common import console as make_console
    from mobilebone.registry import get_entry

    _check_options(args)
    size = args.input_size or int(get_entry(args.name).default_cfg["input_size"][-1])
    model = build(args)
    console = make_console()
    out = Path(args.out)
    lines: list[str] = []
    if args.format == "onnx":
        from mobilebone.export.onnx import export_onnx

        if args.int8:
            from mobilebone.export.quantize import quantize_onnx

            with tempfile.TemporaryDirectory() as work:
                fp32 = Path(work) / "fp32.onnx"
                checks = export_onnx(model, fp32, input_size=size, dynamic_batch=args.dynamic_batch)
                lines += [str(c) for c in checks]
                report = quantize_onnx(
                    fp32,
                    out,
                    calibration=args.calibration,
                    num_calibration=args.num_calibration,
                    latency_runs=200,
                    threads=args.threads,
                )
                lines += report.lines()
        else:
            checks = export_onnx(
                model, out, input_size=size, dynamic_batch=args.dynamic_batch, fp16=args.fp16
            )
            lines += [str(c) for c in checks]
    elif args.format == "coreml":
        from mobilebone.export.coreml import export_coreml

        result = export_coreml(
            model,
            out,
            input_size=size,
            precision="fp16" if args.fp16 else "fp32",
            image_input=args.image_input,
            dynamic_batch=args.dynamic_batch,
        )
        lines += [f"converted through {result.converter}, {result.precision} compute precision"]
        lines += [f"preprocessing: {result.preprocessing}"]
        lines += [f"structure: {check}" for check in result.structural]
        lines += [str(c) for c in result.verifications]
        if not any(c.runtime == "coreml" for c in result.verifications):
            lines.append(
                "prediction not compared: Core ML runs only on macOS (package validated structurally)"
            )
    else:
        from mobilebone.export.torchscript import export_torchscript

        checks = export_torchscript(model, out, input_size=size, dynamic_batch=args.dynamic_batch)
        lines += [str(c) for c in checks]
    for line in lines:
        console.print(line, highlight=False)
    console.print(f"wrote {out} ({args.name}, {args.format}, {size}x{size})", highlight=False)
    return 0
