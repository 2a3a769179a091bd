"""``mobilebone segment``: run a segmenter on images and write colour-mask overlay PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``segment`` subcommand."""
    parser = subparsers.add_parser(
        "segment",
        help="segment images with task-model weights and write colour-mask overlay PNGs",
        description=(
            "Load --weights (a task-model file written by mobilebone.tasks.save_task_model), label every "
            "pixel of each image and write an overlay PNG per image to --out-dir; prints the share of "
            "pixels per class."
        ),
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (anything PIL opens)")
    parser.add_argument("--weights", metavar="FILE", required=True, help="task-model weights (.safetensors)")
    parser.add_argument("--model", metavar="NAME", help="segmenter name; must match the weights when given")
    parser.add_argument("--num-classes", type=int, help="class count; must match the weights when given")
    parser.add_argument("--size", type=int, help="run at this square size (default: each image's own size)")
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="overlay folder (default: here)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check inputs, load, segment, print and draw."""
    from mobilebone.cli.main import CliError

    if args.size is not None and args.size < 32:
        raise CliError(f"--size must be >= 32, got {args.size}")
    from mobilebone.tasks.checkpoint import class_names, load_task_model
    from mobilebone.tasks.predict import read_image, save_png, segment, segmentation_overlay
    from mobilebone.tasks.registry import get_task_entry

    if args.model is not None:
        get_task_entry(args.model, "segmentation")
    images = [read_image(path) for path in args.images]  # every file is checked before any output
    model = load_task_model(args.weights, model=args.model, num_classes=args.num_classes)
    if get_task_entry(model.task_name).task != "segmentation":  # type: ignore[arg-type]
        raise CliError(f"{args.weights} holds a detection model; use `mobilebone detect`")
    classes = int(model.num_classes)  # type: ignore[arg-type]
    names = class_names(args.weights, classes)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path, image in zip(args.images, images, strict=True):
        labels = segment(model, image, args.size)
        counts = labels.flatten().bincount(minlength=classes)
        shares = ", ".join(
            f"{names[c]}: {100 * int(n) / labels.numel():.1f} %" for c, n in enumerate(counts) if n
        )
        print(f"{path}: {shares}")
        out = args.out_dir / f"{Path(path).stem}_segmentation.png"
        save_png(segmentation_overlay(image, labels, classes), out)
        print(f"  overlay: {out}")
    return 0
