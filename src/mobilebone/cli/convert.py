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

    import torch

    from mobilebone import create_model, reparameterize_model
    from mobilebone.checkpoints import save_native
    from mobilebone.checkpoints.load import load_into, read
    from mobilebone.checkpoints.tags import tag_cfg
    from mobilebone.cli.main import CliError

    dst = Path(args.dst).expanduser()
    if dst.suffix != ".safetensors":
        raise CliError(f"DST must be a .safetensors file, got {args.dst!r}")
    if dst.is_dir():
        raise CliError(f"DST {args.dst!r} is a folder; give a file name ending in .safetensors")
    name = args.model.split(".", 1)[0] if args.model else None
    ckpt = read(args.src, arch=name)
    model_name = args.model or ckpt.model_name
    if not model_name:
        raise CliError(
            f"{args.src} does not say which model it holds; pass --model NAME (see `mobilebone list`)"
        )
    model = create_model(
        model_name,
        num_classes=ckpt.num_classes,
        in_chans=ckpt.in_chans or 3,
        inference_mode=ckpt.layout.fused,
    )
    with torch.no_grad():
        load_into(model, ckpt, strict=True)
    cfg = {**tag_cfg(model_name), **ckpt.cfg()}  # the weights' own record wins over the name's tag
    if cfg:
        model.pretrained_cfg.update(cfg)  # type: ignore[union-attr, operator]
    if args.reparameterize:
        model = reparameterize_model(model)
    out = save_native(model, dst, model_name=model_name)
    form = "fused" if args.reparameterize or ckpt.layout.fused else "train-time"
    print(f"{args.src} ({ckpt.layout.describe()}) → {out} ({model_name}, {form} form)")
    return 0
