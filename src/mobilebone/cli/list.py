"""``mobilebone list``: registered models (or pretrained weight tags with their preprocessing and source)."""

from __future__ import annotations

import argparse

# Columns of `list --pretrained`: the eval preprocessing (timm's pretrained_cfg keys; "test" is timm's
# test_input_size@test_crop_pct) and the Hugging Face Hub repository holding model.safetensors.
PRETRAINED_COLUMNS = ("name", "input", "crop", "interpolation", "mean", "std", "classes", "test", "hf_hub_id")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``list`` subcommand."""
    parser = subparsers.add_parser(
        "list", help="list model names (or weight tags, their preprocessing and source, with --pretrained)"
    )
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'mobileone_*'")
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="list arch.tag weights with their eval preprocessing and Hugging Face Hub source",
    )
    parser.add_argument(
        "--task",
        choices=("classification", "detection", "segmentation"),
        default="classification",
        help="list the backbones (classification, the default) or the detection / segmentation models",
    )
    parser.set_defaults(func=run)


def _triple(values: tuple[float, ...]) -> str:
    """``(0.485, 0.456, 0.406)`` → ``"0.485,0.456,0.406"`` (one column, no spaces)."""
    return ",".join(f"{v:g}" for v in values)


def pretrained_rows(names: list[str]) -> list[tuple[str, ...]]:
    """One row per weight tag: the ``PRETRAINED_COLUMNS`` as strings."""
    from mobilebone.checkpoints.tags import get_tag

    rows: list[tuple[str, ...]] = []
    for name in names:
        tag = get_tag(name)
        test = f"{tag.test_input_size}@{tag.test_crop_pct:g}" if tag.test_input_size else "-"
        rows.append(
            (
                tag.name,
                str(tag.input_size),
                f"{tag.crop_pct:g}",
                tag.interpolation,
                _triple(tag.mean),
                _triple(tag.std),
                str(tag.num_classes),
                test,
                tag.hf_hub_id,
            )
        )
    return rows


def aligned(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned text columns two spaces apart (stable for pipes and ``grep``)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def run(args: argparse.Namespace) -> int:
    """Print one name per line, or with ``--pretrained`` a table of tags, preprocessing and source."""
    from mobilebone import list_models

    if args.task != "classification":
        if args.pretrained:
            raise ValueError(
                "--pretrained lists backbone weights; task models have none published (drop --task)"
            )
        from mobilebone.tasks.registry import list_task_models

        names = list_task_models(args.task, args.pattern)
        if not names:
            raise ValueError(f"no {args.task} model matches {args.pattern!r}")
        print("\n".join(names))
        return 0
    names = list_models(args.pattern, pretrained=args.pretrained)
    if not names:
        raise ValueError(f"no model matches {args.pattern!r}")
    if args.pretrained:
        from mobilebone.checkpoints.tags import HUB_FILENAME

        print("\n".join(aligned(PRETRAINED_COLUMNS, pretrained_rows(names))))
        print(
            f"weights: https://huggingface.co/<hf_hub_id>/resolve/main/{HUB_FILENAME} (downloaded on first use)"
        )
    else:
        print("\n".join(names))
    return 0
