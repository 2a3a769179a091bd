"""``mobilebone eval``: top-1 / top-5 of given weights, preprocessed as the weights expect."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        "eval",
        help="top-1 / top-5 accuracy of weights on an ImageFolder (or the embedded validation split)",
        description=(
            "Load --weights (any supported checkpoint, or a weight tag) into --model, preprocess with the "
            "weights' own settings (input size, crop, interpolation, mean/std) and report top-1 and top-5 on "
            "--data (DIR/val/<class>/<image>, or DIR/<class>/<image>). Without --data: the embedded shapes "
            "set's validation split, regenerated with the settings saved in the weights by `mobilebone train`."
        ),
    )
    parser.add_argument(
        "--task",
        choices=("classification", "detection", "segmentation"),
        default="classification",
        help="classification (top-1 / top-5), detection (COCO mAP, mAP@.5) or segmentation (mIoU, pixel "
        "accuracy) of task-model weights from `mobilebone train --task`",
    )
    parser.add_argument("--model", metavar="NAME", help="architecture; default: from the weights' metadata")
    parser.add_argument("--weights", metavar="SRC", required=True, help="checkpoint file or weight tag")
    parser.add_argument("--data", metavar="DIR", help="ImageFolder root (uses DIR/val when it exists)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--workers", type=int, default=2, help="data-loading worker processes (default 2)")
    parser.add_argument(
        "--embedded-val", type=int, help="embedded set: validation images (default: as trained)"
    )
    parser.add_argument(
        "--data-seed", type=int, help="embedded set: seed of its images (default: as trained)"
    )
    from mobilebone.cli.train import layout_flag

    parser.add_argument("--data-layout", **layout_flag())
    parser.add_argument("--input-size", type=int, help="--task only: eval size (default: as trained)")
    parser.set_defaults(func=run)


def _training_config(metadata: dict[str, str], origin: str) -> dict[str, Any]:
    from mobilebone.checkpoints.native import json_field

    value = json_field(metadata, "training_config", dict, origin)
    return value if value is not None else {}


def class_mapping(folders: list[str], recorded: list[str] | None, num_classes: int) -> tuple[list[int], str]:
    """Weight class index of each (sorted) class folder, and how it was matched.

    By name when the weights record their class names (every folder must be one of them; a subset is
    fine), else by sorted folder order, which needs exactly one folder per class.
    """
    from mobilebone.cli.main import CliError

    if recorded is not None:
        index = {name: i for i, name in enumerate(recorded)}
        unknown = [f for f in folders if f not in index]
        if unknown:
            shown = ", ".join(recorded[:8]) + (", …" if len(recorded) > 8 else "")
            raise CliError(
                f"class folder {unknown[0]!r} is not one of the weights' {len(recorded)} classes ({shown})"
                + (f"; {len(unknown) - 1} more unknown" if len(unknown) > 1 else "")
            )
        return [index[f] for f in folders], "class folders matched by name to the weights' class names"
    if len(folders) != num_classes:
        raise CliError(
            f"{len(folders)} class folders but the weights have {num_classes} classes and record no class "
            f"names, so folders can only be matched by sorted order, one per class"
        )
    return list(range(num_classes)), "class folders matched by sorted order (the weights record no names)"


def _dataset(args: argparse.Namespace, ckpt: Any, trained: dict[str, Any]) -> tuple[Any, str]:
    """The PIL-image dataset to evaluate on and a description of it."""
    from pathlib import Path

    from mobilebone.cli.main import CliError

    num_classes = ckpt.num_classes
    if args.data is None:
        from mobilebone.training.synthetic import MAX_CLASSES, MIN_CLASSES, SyntheticShapes

        if not MIN_CLASSES <= num_classes <= MAX_CLASSES:
            raise CliError(
                f"the weights have {num_classes} classes but the embedded set has {MIN_CLASSES}-{MAX_CLASSES}; "
                f"pass --data DIR"
            )
        size = args.embedded_val if args.embedded_val is not None else int(trained.get("embedded_val", 1000))
        seed = args.data_seed if args.data_seed is not None else int(trained.get("data_seed", 0))
        return SyntheticShapes(
            "val", size, num_classes=num_classes, seed=seed
        ), f"embedded val split (seed {seed})"
    from mobilebone.training.data import image_folder

    root = Path(args.data).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such directory; expected DIR/val/<class>/<image>")
    folder = root / "val" if (root / "val").is_dir() else root
    dataset = image_folder(folder)
    mapping, how = class_mapping(list(dataset.classes), ckpt.class_names, num_classes)
    dataset.target_transform = mapping.__getitem__  # folder index → the weights' class index
    return dataset, f"{folder} ({how})"


def run(args: argparse.Namespace) -> int:
    """Load weights, build the eval pipeline, report top-1 / top-5."""
    import torch

    from mobilebone.checkpoints.build import model_for_checkpoint
    from mobilebone.checkpoints.load import read
    from mobilebone.cli.main import CliError
    from mobilebone.training.data import Transformed, eval_loader
    from mobilebone.training.evaluate import evaluate
    from mobilebone.transforms import eval_transform

    if args.batch_size < 1 or args.workers < 0:
        raise CliError("--batch-size must be >= 1 and --workers >= 0")
    if args.embedded_val is not None and args.embedded_val < 1:
        raise CliError(
            f"--embedded-val must be >= 1 (images in the embedded validation split), got {args.embedded_val}"
        )
    if args.task != "classification":
        from mobilebone.cli.eval_task import run_task

        return run_task(args)
    if args.data_layout is not None or args.input_size is not None:
        raise CliError("--data-layout and --input-size are for --task detection / segmentation")
    arch = args.model.split(".", 1)[0] if args.model else None
    ckpt = read(args.weights, arch=arch)
    if ckpt.num_classes == 0:
        raise CliError(f"{args.weights} has no classifier (a headless checkpoint); it cannot be evaluated")
    # The deploy graph computes the same function faster; a train-time checkpoint is fused on loading.
    model, model_name = model_for_checkpoint(ckpt, args.model, deploy=True)
    cfg = dict(model.pretrained_cfg)  # type: ignore[arg-type]  # the weights' preprocessing
    dataset, where = _dataset(args, ckpt, _training_config(ckpt.metadata, ckpt.origin))
    data = Transformed(dataset, eval_transform(cfg))
    loader = eval_loader(data, batch_size=args.batch_size, workers=args.workers)
    with torch.inference_mode():
        (result,) = evaluate(model, loader)
    size = cfg.get("input_size", "?")
    print(
        f"{model_name} ({args.weights}) on {where}, {result.count} images at {size[-1] if isinstance(size, (list, tuple)) else size} px: "
        f"top-1 {result.top1:.2f} %  top-5 {result.top5:.2f} %  (loss {result.loss:.4f})"
    )
    return 0
