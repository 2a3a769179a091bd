"""``mobilebone deploy``: build every runtime × precision available here, verify each against PyTorch on
held-out images, time them interleaved, and write the fastest verified one with a report."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn

RANDOM_INIT_NOTE = (
    "no --weights: the model has random-init weights, so top-1 agreement says little about accuracy on real "
    "images (it only shows the candidate computes the same function); pass --weights W for a meaningful check"
)
GENERATED_NOTE = (
    "no --calibration: int8 candidates were calibrated on generated smooth random images, not real ones; "
    "pass --calibration DIR (a folder of representative images) for ranges that match real inputs"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``deploy`` subcommand."""
    from mobilebone.analysis.runtimes import deploy_runtimes  # the table imports no heavy library

    parser = subparsers.add_parser(
        "deploy", help="find the fastest verified runtime × precision on this CPU and write it with a report"
    )
    parser.add_argument("name", metavar="NAME", help="model name (see `mobilebone list`)")
    parser.add_argument(
        "--weights", default=None, help="checkpoint file or weight tag arch.tag (default: random init)"
    )
    parser.add_argument(
        "--calibration", default=None, help="folder of images for int8 calibration (default: generated)"
    )
    parser.add_argument(
        "--max-agreement-drop",
        type=float,
        default=0.5,
        help="largest allowed drop of top-1 agreement with float32, in percentage points (default 0.5)",
    )
    parser.add_argument(
        "--runtimes",
        nargs="+",
        default=None,
        help="candidates, space- or comma-separated (default: all available): "
        + ", ".join(spec.name for spec in deploy_runtimes()),
    )
    parser.add_argument(
        "--out", default="mobilebone-deploy", help="output folder (default ./mobilebone-deploy/)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads of every runtime, 1 to the usable cores (default: all usable cores)",
    )
    parser.add_argument(
        "--input-size", type=int, default=None, help="square input side (default: the weights' / model's)"
    )
    parser.add_argument("--num-classes", type=int, default=None, help="classifier size without --weights")
    parser.add_argument("--held-out", type=int, default=200, help="verification images (default 200)")
    parser.add_argument(
        "--num-calibration", type=int, default=32, help="int8 calibration images (default 32)"
    )
    parser.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds (default 20)")
    parser.set_defaults(func=run)


def _runtime_names(requested: list[str] | None) -> list[str] | None:
    from mobilebone.deploy import get_runtime

    if requested is None:
        return None
    names = [n.strip() for item in requested for n in item.split(",") if n.strip()]
    for name in names:
        get_runtime(name)  # unknown names fail here, in one line
    if not names:
        raise ValueError("--runtimes needs at least one runtime")
    return list(dict.fromkeys(names))


def _check(args: argparse.Namespace) -> None:
    from mobilebone.cli.common import at_least, check_input_size, check_threads

    at_least("--held-out", args.held_out, 1)
    at_least("--num-calibration", args.num_calibration, 2)
    at_least("--rounds", args.rounds, 1)
    at_least("--max-agreement-drop", args.max_agreement_drop, 0)
    args.threads = check_threads(args.threads)
    check_input_size(args.input_size)


def _embedded_config(model: nn.Module, metadata: dict[str, str]) -> dict[str, Any] | None:
    """The training config of weights trained on the embedded set (None for other weights)."""
    import json

    try:
        config = json.loads(metadata.get("training_config", "null"))
    except json.JSONDecodeError:
        return None
    return config if isinstance(config, dict) and "data" in config and config["data"] is None else None


def _embedded_images(
    split: str, count: int, config: dict[str, Any], cfg: dict[str, Any], size: int
) -> Tensor:
    """``count`` images of the embedded data set's ``split``, preprocessed as the model expects."""
    import torch

    from mobilebone.training.synthetic import SyntheticShapes
    from mobilebone.transforms import eval_transform

    data = SyntheticShapes(
        split,
        count,
        num_classes=int(config.get("embedded_classes", 10)),
        seed=int(config.get("data_seed", 0)),
    )
    transform = eval_transform(dict(cfg, input_size=(3, size, size)))
    return torch.stack([transform(data[i][0]) for i in range(len(data))])


def run(args: argparse.Namespace) -> int:
    """Build, verify, time, write."""
    from pathlib import Path

    from mobilebone.cli.common import console as make_console
    from mobilebone.cli.export import _input_size, build
    from mobilebone.deploy import search
    from mobilebone.export.calibration import calibration_split, check_calibration, generated_images

    _check(args)
    runtimes = _runtime_names(args.runtimes)
    if args.calibration:
        check_calibration(args.calibration)
    model = build(args)
    size = _input_size(args, model)
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    metadata: dict[str, str] = {}
    if args.weights:
        from mobilebone.checkpoints.load import read

        metadata = read(args.weights, arch=args.name.split(".", 1)[0]).metadata
    embedded = _embedded_config(model, metadata)
    notes = [] if args.weights else [RANDOM_INIT_NOTE]
    if embedded is not None:
        held = _embedded_images("val", args.held_out, embedded, cfg, size)
        held_desc = (
            f"embedded data set, val split (seed {embedded.get('data_seed', 0)}), the weights' held-out split"
        )
    if args.calibration:
        calib, folder_held, calib_desc = calibration_split(
            args.calibration, cfg, (size, size), args.num_calibration, args.held_out
        )
        if embedded is None:
            held, held_desc = folder_held, f"images of {args.calibration} not used for calibration"
    elif embedded is not None:
        calib = _embedded_images("train", args.num_calibration, embedded, cfg, size)
        calib_desc = f"{args.num_calibration} images of the embedded data set's train split"
    else:
        images = generated_images(args.num_calibration + args.held_out, cfg, (size, size))
        calib, held = images[: args.num_calibration], images[args.num_calibration :]
        calib_desc, held_desc = "generated smooth random images", "generated smooth random images (others)"
        notes.append(GENERATED_NOTE)
    if len(held) < 1:
        raise ValueError(f"{args.calibration} has no image left for verification after calibration")
    console = make_console()
    for note in notes:
        console.print(f"note: {note}", highlight=False)
    report = search(
        model,
        held,
        calib,
        runtimes=runtimes,
        max_agreement_drop=args.max_agreement_drop,
        threads=args.threads,
        rounds=args.rounds,
        out=Path(args.out),
        model_name=args.name,
        weights=args.weights or "random init (agreement means little)",
        held_out=held_desc,
        calibration=calib_desc,
        notes=notes,
    )
    for line in report.table():
        console.print(line, highlight=False)
    chosen = report.chosen
    if chosen is None:
        console.print(f"no candidate passed verification; report in {args.out}/report.md", highlight=False)
        return 1
    console.print(
        f"chose {chosen.runtime} ({chosen.precision}, {chosen.median_ms:.2f} ms): "
        f"{', '.join(chosen.artifacts)}; report in {args.out}/report.md",
        highlight=False,
    )
    return 0
