"""``mobilebone bench``: latency of the model zoo on this machine, and how well MACs/params predict it."""

from __future__ import annotations

import argparse
from typing import Any

from mobilebone.analysis.runtimes import AUTO, runtimes_help
from mobilebone.cli.common import MAX_INPUT_SIZE, MIN_INPUT_SIZE
from mobilebone.tasks.registry import BENCH_INPUT_SIZE, TASKS

DEFAULT_OUT = "mobilebone-report"
# Per model and runtime, the timed phase stops after this many seconds (runs done are recorded beside the
# runs requested), so the default sweep stays within the 5 minutes on 2 cores while 1000 runs stay
# the default request: fast models complete them, slower ones stop at the cap. `--max-seconds 0` = no cap.
DEFAULT_MAX_SECONDS = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand."""
    parser = subparsers.add_parser(
        "bench",
        help="latency of the model zoo here; correlation of latency with MACs and params",
        description=(
            "Time our models and torchvision/timm baselines (random weights) on the local CPU in the fastest "
            "available CPU runtime (GPU runtimes only when named in --runtimes), then report the rank "
            "correlation of latency with MACs and with parameters. Writes results.csv, results.json, "
            "report.md and two scatter plots to --out; rows are saved as they complete. By default each "
            f"model's timed phase is capped at {DEFAULT_MAX_SECONDS:g} s, so slower models do fewer than "
            "the 1000 requested runs (the report gives runs done/requested); --max-seconds 0 removes the cap."
        ),
    )
    parser.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help=(
            "time detection or segmentation models instead, each interleaved with its torchvision "
            "MobileNetV3 counterpart (ssdlite320 / deeplabv3 / lraspp_mobilenet_v3_large, random weights) at "
            "the same input size, in PyTorch eager; detectors are timed to their raw head outputs (no "
            "NMS / decoding). Writes bench_TASK.json to --out"
        ),
    )
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help=(
            "zoo names or globs, space- or comma-separated (default: our 10 models + 10 baselines, marked "
            "in --list; '*' = the whole zoo); with --task, task model names or globs (default: all 20)"
        ),
    )
    parser.add_argument(
        "--runtimes",
        nargs="+",
        default=[AUTO],
        metavar="RT",
        help=runtimes_help(),
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1000,
        help="timed runs requested per model (default: 1000; the time cap may stop a model earlier)",
    )
    parser.add_argument("--warmup", type=int, default=50, help="untimed warm-up runs (default: 50)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help=(
            "cap on each model's timed phase in seconds (at least 10 runs are still done; warm-up stops at "
            f"half the cap); 0 = no cap, all --runs (default: {DEFAULT_MAX_SECONDS:g})"
        ),
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads, 1 to the usable cores (more is refused; default: usable cores)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=None,
        help=(
            f"square input side, {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} (default: 224; with --task: "
            + ", ".join(f"{t} {s}" for t, s in BENCH_INPUT_SIZE.items())
            + ")"
        ),
    )
    parser.add_argument("--batch-size", type=int, default=1, help="batch size (default: 1)")
    parser.add_argument(
        "--train-form",
        action="store_true",
        help="time the train-time form (branches, BatchNorm) instead; params and MACs are then counted on it too",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT})")
    parser.add_argument(
        "--resume", action="store_true", help="keep rows in --out and measure only the missing ones"
    )
    parser.add_argument(
        "--list", action="store_true", help="print the zoo and the available runtimes, then exit"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resolve models and runtimes, run the sweep with a progress bar, print the table, write the report."""
    from mobilebone.analysis.runtimes import RUNTIMES, available_runtimes, default_runtime
    from mobilebone.analysis.zoo import default_models, resolve_models, zoo
    from mobilebone.cli.common import (
        at_least,
        check_input_size,
        check_output_path,
        check_threads,
        resolve_runtimes,
    )
    from mobilebone.cli.common import console as make_console

    console = make_console()
    if args.task:
        from mobilebone.cli.bench_task import run_task

        return run_task(args, console)
    if args.input_size is None:
        args.input_size = 224
    if args.list:
        defaults = {e.name for e in default_models()}
        for name, entry in zoo().items():
            default = "default" if name in defaults else ""
            print(f"{name:40s} {entry.source:12s} {entry.kind:12s} {default}")
        print(
            "\nruntimes available here: "
            + ", ".join(f"{n} ({RUNTIMES[n].help})" for n in available_runtimes())
            + f"\nauto = {default_runtime()}"
        )
        return 0
    at_least("--runs", args.runs, 1)
    at_least("--batch-size", args.batch_size, 1)
    check_input_size(args.input_size)
    at_least("--warmup", args.warmup, 0)
    at_least("--max-seconds", args.max_seconds, 0)
    threads = check_threads(args.threads)
    check_output_path(args.out)
    runtimes = resolve_runtimes(args.runtimes)
    entries = resolve_models(args.models) if args.models else default_models()

    from mobilebone.analysis.sweep import Sweep, SweepSettings

    settings = SweepSettings(
        runtimes=runtimes,
        threads=threads,
        runs=args.runs,
        warmup=args.warmup,
        input_size=args.input_size,
        batch_size=args.batch_size,
        deploy=not args.train_form,
        max_seconds=args.max_seconds or None,
    )
    sweep = Sweep(args.out, settings, resume=args.resume)
    if sweep.replaced:
        console.print(
            f"[yellow]replacing {sweep.replaced} rows of an earlier sweep in {args.out} "
            "(use --resume to keep them)[/yellow]"
        )
    jobs = sweep.pending(entries)
    skipped = len(entries) * len(runtimes) - len(jobs)
    console.print(
        f"mobilebone bench: {len(entries)} models × {', '.join(runtimes)}, {settings.form} form, "
        f"batch {settings.batch_size}×{settings.input_size}px, {threads} threads, {settings.runs} runs requested"
        + (f" (timed phase ≤ {settings.max_seconds:g} s per model)" if settings.max_seconds else "")
    )
    if skipped:
        console.print(f"{skipped} already measured, skipped")
    _run_with_progress(sweep, entries, len(jobs), console)
    correlations = sweep.finish()
    _print_summary(sweep.rows, correlations, console)
    console.print(
        f"wrote {args.out}/: results.csv, results.json, report.md, latency_vs_macs.png, latency_vs_params.png"
    )
    return 0


def _run_with_progress(sweep: Any, entries: list[Any], total: int, console: Any) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("measuring", total=total)

        def on_start(entry: Any, runtime: str) -> None:
            progress.update(task, description=f"{entry.name} ({runtime})")

        def on_row(row: dict[str, Any]) -> None:
            if row["status"] != "ok":
                progress.console.print(f"[red]{row['model']} ({row['runtime']}) failed:[/red] {row['error']}")
            progress.advance(task)

        sweep.run(entries, on_start=on_start, on_row=on_row)
        progress.update(task, description="done")


def _print_summary(rows: list[dict[str, Any]], correlations: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    from mobilebone.analysis.report import group_rows

    for label, group in group_rows(rows).items():
        table = Table(title=label)
        for column in (
            "model",
            "kind",
            "params (M)",
            "MMACs",
            "min ms",
            "median ms",
            "p90 ms",
            "runs done/req",
        ):
            table.add_column(column, justify="left" if column in ("model", "kind") else "right")
        ok = sorted((r for r in group if r["status"] == "ok"), key=lambda r: r["min_ms"])
        for r in ok:
            table.add_row(
                r["model"],
                r["kind"],
                f"{r['params'] / 1e6:.2f}",
                f"{r['macs'] / 1e6:,.0f}",
                f"{r['min_ms']:.2f}",
                f"{r['median_ms']:.2f}",
                f"{r['p90_ms']:.2f}",
                f"{r['runs']}/{r['runs_requested']}",
            )
        for r in group:
            if r["status"] != "ok":
                table.add_row(r["model"], r["kind"], "–", "–", "failed", str(r["error"])[:60], "", "")
        console.print(table)
        for c in correlations.get(label, []):
            if c.method == "spearman":
                console.print(f"  Spearman ρ(latency, {c.x}) = {c}")
