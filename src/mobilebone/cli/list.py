"""``mobilebone list``: registered models (or pretrained weight tags)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``list`` subcommand."""
    parser = subparsers.add_parser("list", help="list model names (or weight tags with --pretrained)")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'mobileone_*'")
    parser.add_argument("--pretrained", action="store_true", help="list arch.tag pretrained weight names")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one name per line."""
    from mobilebone import list_models

    names = list_models(args.pattern, pretrained=args.pretrained)
    if not names:
        raise ValueError(f"no model matches {args.pattern!r}")
    print("\n".join(names))
    return 0
