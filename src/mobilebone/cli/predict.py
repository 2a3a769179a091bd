"""``mobilebone predict``: classify images with given weights and their preprocessing; print the top-k."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

_BATCH = 16  # images per forward pass: bounded memory for long file lists


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="classify images and print the top-5 ImageNet classes",
        description=(
            "Load --weights (a checkpoint file in any supported format, or a weight tag arch.tag) into "
            "--model, preprocess each image as the weights expect (input size, crop, interpolation, "
            "mean/std) and print the most likely classes."
        ),
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (anything PIL opens)")
    parser.add_argument("--model", metavar="NAME", help="architecture; default: from the weights' metadata")
    parser.add_argument("--weights", metavar="SRC", required=True, help="checkpoint file or weight tag")
    parser.add_argument("--top-k", type=int, default=5, help="classes printed per image (default 5)")
    parser.set_defaults(func=run)


def class_names(num_classes: int, recorded: list[str] | None = None) -> list[str]:
    """The weights' own class names when they record them, else ImageNet-1k's for 1000 classes, else
    ``class <i>``."""
    from importlib.resources import files

    if recorded is not None:
        return list(recorded)
    if num_classes == 1000:
        text = (files("mobilebone") / "data" / "imagenet_classes.txt").read_text(encoding="utf-8")
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if len(names) == 1000:
            return names
    return [f"class {i}" for i in range(num_classes)]


def open_image(path: str, *, verify_only: bool = False) -> Any:
    """Open and decode an image (or only check its header), else raise a one-line error saying why."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"image not found: {path}" if not file.exists() else f"not a file: {path}")
    try:
        # PIL only warns between its pixel limit and twice it; decoding such an image can take gigabytes.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                if verify_only:
                    image.verify()
                    return None
                image.load()
                return image.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(
            f"{path} is too large to decode safely ({err}); resize it first (a decompression bomb?)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(
            f"cannot read {path} as an image ({type(err).__name__}); give a JPEG/PNG/... file"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Load weights, preprocess, classify, print."""
    import torch

    from mobilebone.checkpoints import model_for_checkpoint
    from mobilebone.checkpoints.load import read
    from mobilebone.cli.main import CliError
    from mobilebone.transforms import eval_transform

    if args.top_k < 1:
        raise CliError(f"--top-k must be >= 1, got {args.top_k}")
    for path in args.images:  # fail on a bad file before any work; decode later, a batch at a time
        open_image(path, verify_only=True)
    ckpt = read(args.weights, arch=args.model.split(".", 1)[0] if args.model else None)
    if ckpt.num_classes == 0:
        raise CliError(f"{args.weights} has no classifier (a headless checkpoint); it cannot classify")
    # The deploy graph computes the same function faster; a train-time checkpoint is fused on loading.
    model, _ = model_for_checkpoint(ckpt, args.model, deploy=True)
    cfg = dict(model.pretrained_cfg)  # type: ignore[arg-type]  # the weights' preprocessing
    transform = eval_transform(cfg)
    names = class_names(ckpt.num_classes, ckpt.class_names)
    k = min(args.top_k, ckpt.num_classes)
    for start in range(0, len(args.images), _BATCH):
        chunk = args.images[start : start + _BATCH]
        with torch.no_grad():
            probs = model(torch.stack([transform(open_image(path)) for path in chunk])).softmax(dim=-1)
        top = probs.topk(k, dim=-1)
        for path, values, indices in zip(chunk, top.values, top.indices, strict=True):
            print(path)
            for rank, (p, i) in enumerate(zip(values.tolist(), indices.tolist(), strict=True), start=1):
                print(f"  {rank}. {names[i]:<40} {100 * p:6.2f} %")
    return 0
