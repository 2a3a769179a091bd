"""``mobilebone export``: ONNX, Core ML or TorchScript of the deploy model, verified; optional int8."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobilebone.cli.common import MAX_INPUT_SIZE, MIN_INPUT_SIZE

if TYPE_CHECKING:
    from pathlib import Path

    from torch import nn

# Top-1 agreement of int8 with fp32 below which `--int8` fails; why 0.95: mobilebone.export.quantize.
DEFAULT_MIN_AGREEMENT = 0.95


def _onnx(model: nn.Module, out: Path, size: int, args: argparse.Namespace) -> list[str]:
    """ONNX, verified in ONNX Runtime; with ``--int8`` quantized from a verified fp32 export and gated."""
    from mobilebone.export.onnx import to_onnx

    if not args.int8:
        return to_onnx(model, out, input_size=size, dynamic_batch=args.dynamic_batch, fp16=args.fp16).lines()
    import tempfile
    import warnings
    from pathlib import Path

    from mobilebone.export.quantize import QuantizationWarning, quantize_onnx

    with tempfile.TemporaryDirectory() as work:
        fp32 = Path(work) / "fp32.onnx"
        lines = to_onnx(model, fp32, input_size=size, dynamic_batch=args.dynamic_batch).lines()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationWarning)  # printed from the report instead
            report = quantize_onnx(
                fp32,
                out,
                calibration=args.calibration,
                num_calibration=args.num_calibration,
                latency_runs=args.latency_runs,
                threads=args.threads,
                min_agreement=args.min_agreement or None,
            )
    return lines + report.lines()


def _coreml(model: nn.Module, out: Path, size: int, args: argparse.Namespace) -> list[str]:
    """Core ML ML Program, validated structurally (compared numerically on macOS)."""
    from mobilebone.export.coreml import to_coreml

    precision = "fp16" if args.fp16 else "fp32"
    return to_coreml(
        model,
        out,
        input_size=size,
        precision=precision,
        image_input=args.image_input,
        dynamic_batch=args.dynamic_batch,
    ).lines()


def _torchscript(model: nn.Module, out: Path, size: int, args: argparse.Namespace) -> list[str]:
    """TorchScript trace, reloaded from disk and verified."""
    from mobilebone.export.torchscript import to_torchscript

    return to_torchscript(model, out, input_size=size, dynamic_batch=args.dynamic_batch).lines()


@dataclass(frozen=True)
class Format:
    """One export format: the extension its file must have, and the exporter (returns what it checked)."""

    suffix: str
    export: Callable[[nn.Module, Path, int, argparse.Namespace], list[str]]


# The format is inferred from the --out extension when --format is not given.
FORMATS: dict[str, Format] = {
    "onnx": Format(".onnx", _onnx),
    "coreml": Format(".mlpackage", _coreml),
    "torchscript": Format(".pt", _torchscript),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export", help="export the reparameterized model to ONNX / Core ML / TorchScript, verified"
    )
    parser.add_argument("name", metavar="NAME", help="model name (see `mobilebone list`)")
    parser.add_argument(
        "--format",
        choices=list(FORMATS),
        default=None,
        help="output format (default: inferred from the --out extension: "
        + ", ".join(f"{f.suffix} = {name}" for name, f in FORMATS.items())
        + "); the extension must match the format",
    )
    parser.add_argument(
        "--out", required=True, help=f"output file ({', '.join(f.suffix for f in FORMATS.values())}; not '-')"
    )
    parser.add_argument(
        "--weights", default=None, help="checkpoint file or weight tag arch.tag (default: random init)"
    )
    parser.add_argument(
        "--num-classes", type=int, default=None, help="classifier size (default: the weights', else 1000)"
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=None,
        help=f"square input side, {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} (default: the weights' / model's)",
    )
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
        "--threads",
        type=int,
        default=None,
        help="--int8: ONNX Runtime threads, 1 to the usable cores (more is refused; default: usable cores)",
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=DEFAULT_MIN_AGREEMENT,
        help=(
            "--int8: fail, writing nothing, when int8's top-1 class agrees with fp32's on fewer than this "
            f"fraction of the held-out images (default: {DEFAULT_MIN_AGREEMENT:g}; 0 = report only)"
        ),
    )
    parser.add_argument(
        "--latency-runs",
        type=int,
        default=200,
        help="--int8: timed runs of each of fp32 and int8, interleaved (default 200; 0 skips the timing)",
    )
    parser.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    """Reject option combinations the chosen format cannot honour, before any work is done."""
    from pathlib import Path

    from mobilebone.cli.common import check_input_size, check_output_path, check_threads
    from mobilebone.export.calibration import check_calibration

    out = check_output_path(args.out)
    suffix = out.suffix.lower()
    if args.format is None:
        inferred = [name for name, f in FORMATS.items() if f.suffix == suffix]
        if not inferred:
            raise ValueError(
                f"cannot tell the format from --out {args.out!r}: name it "
                + ", ".join(f"*{f.suffix} ({name})" for name, f in FORMATS.items())
                + " or give --format"
            )
        args.format = inferred[0]
    elif suffix != FORMATS[args.format].suffix:
        raise ValueError(
            f"--out {args.out!r} does not match --format {args.format}: name it "
            f"{Path(args.out).stem}{FORMATS[args.format].suffix}"
        )
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
    check_input_size(args.input_size)
    if args.num_classes is not None and args.num_classes < 0:
        raise ValueError(f"--num-classes must be >= 0, got {args.num_classes}")
    if args.latency_runs < 0:
        raise ValueError(f"--latency-runs must be >= 0, got {args.latency_runs}")
    if args.num_calibration < 1:
        raise ValueError(f"--num-calibration must be >= 1, got {args.num_calibration}")
    if not 0.0 <= args.min_agreement <= 1.0:  # also refuses nan
        raise ValueError(f"--min-agreement must be between 0 and 1, got {args.min_agreement:g}")
    args.threads = check_threads(args.threads)
    if args.calibration:
        check_calibration(args.calibration)  # a bad folder fails now, not after the fp32 export


def build(args: argparse.Namespace) -> nn.Module:
    """The model to export: random init, or the model ``--weights`` need (fused weights build the fused
    graph; classes and input channels come from the weights), loaded strictly."""
    import mobilebone
    from mobilebone.checkpoints import CheckpointError, model_for_checkpoint
    from mobilebone.checkpoints.load import read

    if not args.weights:
        return mobilebone.create_model(args.name, num_classes=args.num_classes or 1000)
    try:
        ckpt = read(args.weights, arch=args.name.split(".", 1)[0])
        if args.num_classes is not None and args.num_classes != ckpt.num_classes:
            raise CheckpointError(
                f"the weights have {ckpt.num_classes} classes, not {args.num_classes}; drop --num-classes"
            )
        model, _ = model_for_checkpoint(ckpt, args.name)
    except CheckpointError as err:
        raise ValueError(
            f"cannot load --weights {args.weights!r} into {args.name}: {err.cli_message}"
        ) from None
    return model


def _input_size(args: argparse.Namespace, model: nn.Module) -> int:
    """``--input-size``, else the side the weights were evaluated at (their ``pretrained_cfg``)."""
    if args.input_size:
        return int(args.input_size)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return int(cfg.get("input_size", (3, 224, 224))[-1])


def run(args: argparse.Namespace) -> int:
    """Export, verify, print what was checked."""
    from pathlib import Path

    from mobilebone.cli.common import console as make_console

    _check_options(args)
    model = build(args)
    size = _input_size(args, model)
    console = make_console()
    out = Path(args.out)
    lines = FORMATS[args.format].export(model, out, size, args)
    for line in lines:
        console.print(line, highlight=False)
    console.print(f"wrote {out} ({args.name}, {args.format}, {size}x{size})", highlight=False)
    return 0
