"""``mobilebone convert``: any supported checkpoint (timm, Apple, native) → mobilebone's native format."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` subcommand."""
    parser = subparsers.add_parser(
        "convert",
        help="convert a timm / Apple / mobilebone checkpoint to mobilebone's safetensors format",
        description=(
            "Read SRC (.safetensors, .pth, .pth.tar, .bin; timm MobileOne / MobileNetV4, Apple ml-mobileone "
            "unfused or fused, or native) safely, load it strictly into MODEL and write DST as a "
            "self-describing .safetensors file. Nothing is written when anything fails."
        ),
    )
    parser.add_argument("src", metavar="SRC", help="checkpoint file or weight tag (arch.tag)")
    parser.add_argument("dst", metavar="DST", help="output .safetensors file")
    parser.add_argument(
        "--model", metavar="NAME", help="architecture (or arch.tag); default: the name in SRC's metadata"
    )
    parser.add_argument(
        "--reparameterize", action="store_true", help="write the fused (deploy) form of the weights"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read, load strictly (the check), optionally fuse, save atomically."""
    from pathlib import Path

    from mobilebone import reparameterize_model
    from mobilebone.checkpoints import model_for_checkpoint, save_native
    from mobilebone.checkpoints.load import read
    from mobilebone.cli.main import CliError

    dst = Path(args.dst).expanduser()
    if dst.suffix != ".safetensors":
        raise CliError(f"DST must be a .safetensors file, got {args.dst!r}")
    if dst.is_dir():
        raise CliError(f"DST {args.dst!r} is a folder; give a file name ending in .safetensors")
    ckpt = read(args.src, arch=args.model.split(".", 1)[0] if args.model else None)
    model, model_name = model_for_checkpoint(ckpt, args.model)
    if args.reparameterize:
        model = reparameterize_model(model)
    out = save_native(model, dst, model_name=model_name)
    form = "fused" if args.reparameterize or ckpt.layout.fused else "train-time"
    print(f"{args.src} ({ckpt.layout.describe()}) → {out} ({model_name}, {form} form)")
    return 0
