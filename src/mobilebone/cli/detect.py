"""``mobilebone detect``: run a detector on images, print boxes / classes / scores, write overlay PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``detect`` subcommand."""
    parser = subparsers.add_parser(
        "detect",
        help="detect objects in images with task-model weights; print boxes and write overlay PNGs",
        description=(
            "Load --weights (a task-model file written by mobilebone.tasks.save_task_model), run the "
            "detector on each image and print one line per object (class, score, x1 y1 x2 y2 in pixels). "
            "An overlay PNG with the boxes is written per image to --out-dir."
        ),
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (anything PIL opens)")
    parser.add_argument("--weights", metavar="FILE", required=True, help="task-model weights (.safetensors)")
    parser.add_argument("--model", metavar="NAME", help="detector name; must match the weights when given")
    parser.add_argument("--num-classes", type=int, help="class count; must match the weights when given")
    parser.add_argument("--score-thresh", type=float, default=0.3, help="lowest score shown (default 0.3)")
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="overlay folder (default: here)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check inputs, load, detect, print and draw."""
    from mobilebone.cli.main import CliError

    if not 0.0 <= args.score_thresh <= 1.0:
        raise CliError(f"--score-thresh must be in [0, 1], got {args.score_thresh}")
    from mobilebone.tasks.checkpoint import class_names, load_task_model
    from mobilebone.tasks.predict import detect, detection_overlay, read_image, save_png
    from mobilebone.tasks.registry import get_task_entry

    if args.model is not None:
        get_task_entry(args.model, "detection")
    images = [read_image(path) for path in args.images]  # every file is checked before any output
    model = load_task_model(args.weights, model=args.model, num_classes=args.num_classes)
    if get_task_entry(model.task_name).task != "detection":  # type: ignore[arg-type]
        raise CliError(f"{args.weights} holds a segmentation model; use `mobilebone segment`")
    names = class_names(args.weights, int(model.num_classes))  # type: ignore[arg-type]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path, image in zip(args.images, images, strict=True):
        found = detect(model, image, args.score_thresh)
        print(f"{path}: {len(found)} objects")
        for det in found:
            x1, y1, x2, y2 = det.box
            print(f"  {names[det.label]:<12} {det.score:.3f}  {x1:.1f} {y1:.1f} {x2:.1f} {y2:.1f}")
        out = args.out_dir / f"{Path(path).stem}_detections.png"
        save_png(detection_overlay(image, found, names), out)
        print(f"  overlay: {out}")
    return 0
