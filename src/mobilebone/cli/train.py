"""``mobilebone train``: train a model with the papers' recipes (any flag overrides), resumable, torchrun-ready."""

from __future__ import annotations

import argparse
from typing import Any

# CLI flag → TrainConfig field, for the plain overrides (None = keep the recipe's value).
_OVERRIDES: list[tuple[str, type, str]] = [
    ("--epochs", int, "number of epochs"),
    ("--batch-size", int, "images per process and step (global batch = this × processes)"),
    ("--optimizer", str, "sgd or adamw"),
    ("--lr", float, "peak learning rate, used as is (default: --lr-base scaled to the global batch)"),
    ("--lr-base", float, "learning rate per --lr-base-size images, scaled linearly (SGD) or by sqrt (AdamW)"),
    ("--lr-base-size", int, "global batch that --lr-base refers to"),
    ("--momentum", float, "SGD momentum"),
    ("--weight-decay", float, "weight decay (conv/linear weights only; never norms and biases)"),
    ("--weight-decay-end", float, "anneal the weight decay to this value with a cosine"),
    ("--warmup-epochs", float, "linear learning-rate warm-up, in epochs (fractions allowed)"),
    ("--min-lr", float, "learning rate at the end of the cosine"),
    ("--label-smoothing", float, "label smoothing of the cross-entropy"),
    ("--ema-decay", float, "EMA decay of the weights (0 = no EMA)"),
    ("--augment", str, "basic (random-resized crop + flip), autoaugment or randaugment"),
    ("--min-crop", float, "smallest random-resized-crop area fraction"),
    ("--input-size", int, "training and eval resolution (pixels)"),
    ("--crop-pct", float, "eval center-crop fraction (resize to input-size / crop-pct first)"),
    ("--drop-path", float, "stochastic depth rate (models that support it)"),
    ("--grad-clip", float, "clip the global gradient norm (0 = off)"),
    ("--workers", int, "data-loading worker processes per training process"),
    ("--seed", int, "seed of initialization, sample order and augmentation"),
    (
        "--checkpoint-every",
        int,
        "steps between resume checkpoints (plus one at every epoch end; 0 = epoch ends only)",
    ),
    ("--amp", str, "mixed precision: auto (bf16/fp16 on GPU, none on CPU), bf16, fp16, none"),
    ("--log-every", int, "steps between TensorBoard points and progress-bar updates"),
    ("--embedded-train", int, "embedded set: training images"),
    ("--embedded-val", int, "embedded set: validation images"),
    ("--embedded-classes", int, "embedded set: classes (10-14)"),
    ("--data-seed", int, "embedded set: the seed its images are drawn from"),
]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a model (ImageFolder data or the embedded shapes set); resumable, works under torchrun",
        description=(
            "Train --model on --data (an ImageFolder root with train/ and val/ folders) or, without --data, "
            "on the embedded generated shapes set. Recipes: mobileone (the MobileOne paper's), mobilenetv4 "
            "(timm-style AdamW), embedded (minutes on a CPU); every setting can be overridden. Multi-GPU or "
            "multi-process: torchrun --nproc_per_node=N -m mobilebone train ... . Writes config.json, "
            "metrics.csv, tensorboard/, checkpoint_last.pt (resume), model_best/last.safetensors and "
            "model_deploy.safetensors (reparameterized) to --out."
        ),
    )
    parser.add_argument("--model", metavar="NAME", help="architecture (default: mobileone_s0)")
    parser.add_argument(
        "--data", metavar="DIR", help="ImageFolder root with train/ and val/ (default: embedded set)"
    )
    parser.add_argument(
        "--recipe", help="mobileone, mobilenetv4 or embedded (default: from the model and --data)"
    )
    parser.add_argument("--out", metavar="DIR", help="run folder (default: runs/<model>-<date-time>)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="DIR",
        help="continue the run in --out (or in DIR) from its last checkpoint, with its saved settings",
    )
    parser.add_argument(
        "--no-channels-last",
        dest="channels_last",
        action="store_false",
        default=None,
        help="GPU: keep NCHW tensors (default: channels_last, faster convolutions)",
    )
    for flag, kind, text in _OVERRIDES:
        parser.add_argument(flag, type=kind, default=None, help=text)
    parser.set_defaults(func=run)


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (flags left out keep the recipe's values)."""
    names = [flag[2:].replace("-", "_") for flag, _, _ in _OVERRIDES] + ["recipe", "channels_last"]
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def run(args: argparse.Namespace) -> int:
    """Resolve the config, train, report."""
    from mobilebone.cli.main import CliError
    from mobilebone.training import TrainConfig, resolve_config, train

    if args.resume:
        # A resumed run keeps the settings saved with it; only the folder comes from the command line.
        flags = {"channels_last": "--no-channels-last"}
        given = [flags.get(name, f"--{name.replace('_', '-')}") for name in overrides_from(args)]
        given += [flag for flag, value in (("--model", args.model), ("--data", args.data)) if value]
        if given:
            raise CliError(
                f"--resume continues a run with the settings saved in its config.json; drop {' '.join(given)} "
                f"(or start a new run with another --out to change them)"
            )
        cfg = TrainConfig(out=args.out or "")
        train(cfg, resume=args.resume)
        return 0
    if args.data is not None:
        from mobilebone.training.data import check_image_folder

        check_image_folder(args.data)  # a wrong path fails in a second, before models or data are built
    cfg = resolve_config(args.model, args.data, out=args.out, **overrides_from(args))
    train(cfg)
    return 0
