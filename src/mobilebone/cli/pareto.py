"""``mobilebone pareto``: accuracy vs measured latency here (or on recorded machines), one front per runtime."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_OUT = "mobilebone-pareto"
BENCH_SUBDIR = "bench"  # where a measuring run keeps its bench rows (results.json / results.csv)
STAT_CHOICES = ("min_ms", "median_ms", "p90_ms", "mean_ms")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``pareto`` and ``pick``: which rows (recorded or measured now) and which accuracies."""
    parser.add_argument(
        "--results",
        nargs="+",
        metavar="DIR",
        help="read `mobilebone bench` output folders instead of measuring (one per machine; merged)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help="zoo names or globs (default: every zoo model with weights)",
    )
    parser.add_argument(
        "--runtimes",
        "--runtime",
        dest="runtimes",
        nargs="+",
        default=["auto"],
        metavar="RT",
        help="runtimes to time in, or to choose from with --results (default: auto = every one recorded)",
    )
    parser.add_argument(
        "--accuracy",
        nargs="+",
        default=[],
        metavar="FILE",
        help="your own accuracy CSV(s) (columns model,tag,input_size,top1[,top5,source]); they win over published ones",
    )
    parser.add_argument(
        "--all-tags", action="store_true", help="every published weight tag, not only each model's default"
    )
    parser.add_argument(
        "--stat",
        default="min_ms",
        choices=STAT_CHOICES,
        help="latency statistic (default: min_ms, bench's headline)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT})")
    parser.add_argument("--resume", action="store_true", help="keep rows measured earlier in OUT/bench")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: usable cores)")
    parser.add_argument(
        "--runs", type=int, default=1000, help="timed runs requested per model (default 1000)"
    )
    parser.add_argument("--warmup", type=int, default=50, help="untimed warm-up runs (default 50)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1.0,
        help="cap on each model's timed phase in seconds; 0 = no cap (default 1)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pareto`` subcommand."""
    parser = subparsers.add_parser(
        "pareto",
        help="accuracy vs measured latency (and MACs, params): Pareto fronts per runtime",
        description=(
            "Time every zoo model that has published ImageNet-1k weights at its weights' resolution (bench's "
            "sweep, saved to OUT/bench as it goes, --resume-able), or read recorded bench folders with "
            "--results (several folders = several machines), and report which models are on the "
            "accuracy-vs-latency front of each runtime, and on the fronts against MACs and parameters. "
            "Writes pareto.md, pareto.csv, pareto.json and pareto.png to --out."
        ),
    )
    add_source_arguments(parser)
    parser.set_defaults(func=run)


def _entries(args: argparse.Namespace) -> list[Any]:
    """The accuracy entries to place, restricted to the zoo (and to --models)."""
    from mobilebone.analysis.accuracy import default_entries, load_accuracy
    from mobilebone.analysis.zoo import resolve_models, zoo

    entries = default_entries(load_accuracy(args.accuracy), all_tags=args.all_tags)
    names = {e.name for e in resolve_models(args.models)} if args.models else set(zoo())
    chosen = [e for e in entries if e.model in names]
    if not chosen:
        raise ValueError(
            "no selected model has an accuracy entry; see `mobilebone pareto --help` (--accuracy)"
        )
    return chosen


def collect(args: argparse.Namespace, console: Any) -> tuple[list[Any], list[Any], list[str]]:
    """Points from --results folders, or from a sweep run now into OUT/bench; also the folders and misses."""
    from pathlib import Path

    from mobilebone.analysis.pareto import join_points, read_bench_results

    entries = _entries(args)
    if args.results:
        folders = [read_bench_results(path) for path in args.results]
        labels = [f.label for f in folders]
        for i, folder in enumerate(folders):  # two folders with one name: keep them apart
            if labels.count(folder.label) > 1:
                folder.label = f"{folder.label}#{i + 1}"
    else:
        folders = [read_bench_results(_measure(args, entries, console), label="this machine")]
    points: list[Any] = []
    missing: list[str] = []
    for folder in folders:
        found, absent = join_points(folder, entries, stat=args.stat)
        points += found
        missing += absent
    if args.models:  # the report covers the selection (other models' rows in the folder are not "misses")
        wanted = {e.model for e in entries}
        points = [p for p in points if p.model in wanted]
        missing = [m for m in missing if m.rsplit("@", 1)[0] in wanted]
    if args.results:  # recorded elsewhere: filter by name, without checking what this machine has
        wanted = {n.strip() for item in args.runtimes for n in item.split(",") if n.strip()} - {"auto"}
        if wanted:
            points = [p for p in points if p.runtime in wanted]
    if not points:
        where = ", ".join(str(Path(f.path)) for f in folders)
        raise ValueError(
            f"no bench row in {where} matches a model with a published accuracy at its resolution"
        )
    return points, folders, sorted(set(missing))


def _measure(args: argparse.Namespace, entries: list[Any], console: Any) -> str:
    from pathlib import Path

    from mobilebone.analysis.pareto import measure_rows
    from mobilebone.cli.common import at_least, check_threads, resolve_runtimes

    at_least("--runs", args.runs, 1)
    at_least("--warmup", args.warmup, 0)
    at_least("--max-seconds", args.max_seconds, 0)
    threads = check_threads(args.threads)
    runtimes = resolve_runtimes(args.runtimes)
    out = Path(args.out) / BENCH_SUBDIR
    console.print(
        f"timing {len({e.model for e in entries})} models × {', '.join(runtimes)} at their weights' resolution "
        f"into {out} ({threads} threads)"
    )

    def on_start(entry: Any, runtime: str) -> None:
        console.print(f"  {entry.name} ({runtime})")

    def on_row(row: dict[str, Any]) -> None:
        if row["status"] != "ok":
            console.print(f"  [red]{row['model']} ({row['runtime']}) failed:[/red] {row['error']}")

    measure_rows(
        entries,
        runtimes,
        out,
        threads=threads,
        resume=args.resume,
        runs=args.runs,
        warmup=args.warmup,
        max_seconds=args.max_seconds or None,
        on_start=on_start,
        on_row=on_row,
    )
    return str(out)


def run(args: argparse.Namespace) -> int:
    """Collect points, compute the fronts, print and write the tables and the plot."""
    from pathlib import Path

    from mobilebone.analysis.pareto import groups
    from mobilebone.analysis.pareto_plot import plot_fronts
    from mobilebone.analysis.pareto_report import markdown, point_rows, write_outputs
    from mobilebone.cli.common import console as make_console

    console = make_console()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    points, folders, missing = collect(args, console)
    rows = point_rows(points)
    panels = [
        (f"{machine}: {runtime}", "latency", group) for (machine, runtime), group in groups(points).items()
    ]
    first = next(iter(groups(points).values()))
    panels += [("against MACs", "macs", first), ("against parameters", "params", first)]
    out.mkdir(parents=True, exist_ok=True)
    plot_fronts(panels, out / "pareto.png")
    text = markdown(rows, folders, missing, stat=args.stat, figure="pareto.png")
    write_outputs(rows, text, out)
    _print(rows, console)
    if missing:
        console.print("no published accuracy at the timed resolution (left out): " + ", ".join(missing))
    console.print(f"wrote {out}/: pareto.md, pareto.csv, pareto.json, pareto.png")
    return 0


def _print(rows: list[dict[str, Any]], console: Any) -> None:
    from rich.table import Table

    by_group: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_group.setdefault((r["machine"], r["runtime"]), []).append(r)
    for (machine, runtime), group in by_group.items():
        table = Table(title=f"{machine}: {runtime} (● = on the front)")
        for column in ("weights", "px", "top-1", "ms", "front: latency", "front: MACs", "front: params"):
            table.add_column(column, justify="left" if column == "weights" else "right")
        for r in sorted(group, key=lambda r: r["latency_ms"]):
            name = f"{r['model']}.{r['tag']}"
            table.add_row(
                f"[bold red]{name}[/bold red]" if r["source"] == "mobilebone" else name,
                str(r["input_size"]),
                f"{r['top1']:.2f}",
                f"{r['latency_ms']:.2f}",
                *("●" if r[f"front_{axis}"] else "" for axis in ("latency", "macs", "params")),
            )
        console.print(table)
