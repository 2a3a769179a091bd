"""``mobilebone convert``: any supported checkpoint (timm, Apple, native) → mobilebone's native format."""

from __future__ import annotations

import argparse
from pathlib import Path


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
        "--deploy",
        action="store_true",
        help="write the deploy form of the weights (reparameterized: one conv per unit, no BatchNorm)",
    )
    parser.set_defaults(func=run)


def _check_writable(dst: Path) -> None:
    """Refuse, before any work, a DST below a file or in a folder that cannot be written (missing folders
    are created)."""
    import os

    from mobilebone.cli.main import CliError

    existing = next(p for p in (dst.parent, *dst.parent.parents) if p.exists())
    if not existing.is_dir():
        raise CliError(f"cannot write {dst}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or (dst.exists() and not os.access(dst, os.W_OK)):
        raise CliError(f"cannot write {dst}: permission denied (read-only file or folder)")


def run(args: argparse.Namespace) -> int:
    """Read, load strictly (the check), optionally fuse, save atomically."""
    from mobilebone import reparameterize_model
    from mobilebone.checkpoints import model_for_checkpoint, save_native
    from mobilebone.checkpoints.load import read
    from mobilebone.cli.main import CliError

    dst = Path(args.dst).expanduser()
    if dst.suffix != ".safetensors":
        raise CliError(f"DST must be a .safetensors file, got {args.dst!r}")
    if dst.is_dir():
        raise CliError(f"DST {args.dst!r} is a folder; give a file name ending in .safetensors")
    _check_writable(dst)
    ckpt = read(args.src, arch=args.model.split(".", 1)[0] if args.model else None)
    model, model_name = model_for_checkpoint(ckpt, args.model)
    if args.deploy:
        model = reparameterize_model(model)
    out = save_native(model, dst, model_name=model_name)
    form = "deploy" if args.deploy or ckpt.layout.fused else "train-time"
    print(f"{args.src} ({ckpt.layout.describe()}) → {out} ({model_name}, {form} form)")
    return 0
