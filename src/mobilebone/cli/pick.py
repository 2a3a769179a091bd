"""``mobilebone pick``: the most accurate model (and runtime) whose measured latency fits a budget."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pick`` subcommand."""
    from mobilebone.cli.pareto import add_source_arguments

    parser = subparsers.add_parser(
        "pick",
        help="the most accurate model whose measured latency fits --budget-ms, and how to export it",
        description=(
            "Among the zoo's published ImageNet-1k weights, the most accurate whose latency (timed here, or "
            "read from --results folders: then it must fit on every machine) is within --budget-ms, with the "
            "runtime it was timed in and the `mobilebone export` command that produces it. Exits 1 when "
            "nothing fits."
        ),
    )
    parser.add_argument("--budget-ms", type=float, required=True, help="latency budget per image (ms)")
    parser.add_argument(
        "--task",
        default="classification",
        choices=("classification",),
        help="what the model is for (published accuracies are ImageNet-1k classification)",
    )
    add_source_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Collect points (recorded or measured now), pick, print the choice and its export command."""
    from mobilebone.analysis.pareto import pick
    from mobilebone.cli.common import console as make_console
    from mobilebone.cli.common import resolve_runtimes
    from mobilebone.cli.pareto import collect

    if not args.budget_ms > 0:
        raise ValueError(f"--budget-ms must be > 0, got {args.budget_ms:g}")
    console = make_console()
    points, _, _ = collect(args, console)
    names = [n.strip() for item in args.runtimes for n in item.split(",") if n.strip()]
    if args.results:  # recorded runtimes, named as they were recorded; auto = any
        runtimes: tuple[str, ...] = tuple(n for n in names if n != "auto")
    else:  # measured now: auto means the runtimes just timed
        runtimes = () if names == ["auto"] else resolve_runtimes(names)
    choice = pick(points, args.budget_ms, runtimes)
    if choice is None:
        fastest = min(points, key=lambda p: p.latency_ms)
        print(
            f"mobilebone pick: nothing fits {args.budget_ms:g} ms: the fastest timed model is {fastest.label} at "
            f"{fastest.latency_ms:.2f} ms ({fastest.runtime}, {fastest.machine})",
            file=sys.stderr,
        )
        return 1
    p = choice.point
    where = "every machine" if len(choice.machines) > 1 else choice.machines[0]
    print(
        f"{p.weights} at {p.input_size} px, {p.runtime} ({p.precision}): top-1 {p.top1:.2f} % "
        f"({p.accuracy_source}), {choice.worst_ms:.2f} ms ≤ {args.budget_ms:g} ms on {where}"
    )
    command = choice.export_command()
    if command:
        print(f"export: {command}")
    else:
        print(f"export: {p.model} is a {p.source} model; export it with {p.source} and torch.onnx.export")
    return 0
