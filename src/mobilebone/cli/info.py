"""``mobilebone info``: params and MACs of the train-time and deploy forms side by side."""

from __future__ import annotations

import argparse
from typing import Any, cast


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand."""
    parser = subparsers.add_parser("info", help="params and MACs, train-time vs deploy form")
    parser.add_argument("names", nargs="*", metavar="NAME", help="models or globs (default: every model)")
    parser.add_argument(
        "--input-size", type=int, default=None, help="square input side, 32 to 4096 (default: model's)"
    )
    parser.add_argument("--layers", action="store_true", help="also print the per-layer MAC breakdown")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build each model in both forms, count, print a table."""
    from rich.table import Table

    from mobilebone import create_model
    from mobilebone.analysis import count_macs, count_params
    from mobilebone.cli.common import check_input_size, expand_model_names
    from mobilebone.cli.common import console as make_console

    check_input_size(args.input_size)  # 0 or -1 is an error, not "the model's default"
    names = expand_model_names(args.names or ["*"])

    table = Table(title="mobilebone models: train-time vs deploy (reparameterized) form")
    for column in ("model", "input", "params (train)", "params (deploy)", "MMACs (train)", "MMACs (deploy)"):
        table.add_column(column, justify="left" if column == "model" else "right")
    console = make_console()
    breakdowns = []
    for name in names:
        train = create_model(name)
        deploy = create_model(name, deploy=True)
        cfg = cast(dict[str, Any], train.pretrained_cfg)  # an arch.tag name carries the tag's input size
        size = args.input_size if args.input_size is not None else int(cfg["input_size"][-1])
        train_macs, deploy_macs = count_macs(train, size), count_macs(deploy, size)
        table.add_row(
            name,
            f"{size}x{size}",
            f"{count_params(train):,}",
            f"{count_params(deploy):,}",
            f"{train_macs.total / 1e6:,.1f}",
            f"{deploy_macs.total / 1e6:,.1f}",
        )
        breakdowns.append((name, deploy_macs))
    console.print(table)
    if args.layers:
        for name, report in breakdowns:
            layer_table = Table(title=f"{name}: deploy-form MACs per layer")
            layer_table.add_column("module")
            layer_table.add_column("MMACs", justify="right")
            layer_table.add_column("share", justify="right")
            for module, macs in report.layers(2).items():
                layer_table.add_row(module, f"{macs / 1e6:,.2f}", f"{100 * macs / report.total:.1f} %")
            console.print(layer_table)
    return 0
