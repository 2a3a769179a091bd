"""``mobilebone study``: rerun the papers' architecture latency studies on this machine."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mobilebone.analysis.runtimes import runtimes_help

STUDIES = {
    "activations": "the 30-layer net with ReLU, GELU, Hardswish, SiLU, SE-ReLU, Dynamic Shift-Max, DY-ReLU-A/B",
    "blocks": "the 30-layer net plain, + Squeeze-Excite, + skip connections; MobileOne units train-time vs fused",
    "attention": "Mobile MQA vs multi-head attention, with and without K/V down-sampling; the four UIB forms",
}
DEFAULT_RUNTIMES = ("eager", "onnxruntime")
DEFAULT_MAX_SECONDS = 2.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``study`` subcommand."""
    parser = subparsers.add_parser(
        "study",
        help="the papers' latency studies: activations, SE/skip blocks, MQA vs MHSA and UIB forms",
        description=(
            "Time networks that differ in one design choice (MobileOne §3, MobileNetV4 §3.2-3.3) with the "
            "`mobilebone bench` harness; print a table and write results.csv, results.json, report.md and "
            "latency.png to --out. " + " ".join(f"{name}: {text}." for name, text in STUDIES.items())
        ),
    )
    parser.add_argument("study", choices=sorted(STUDIES), help="which study")
    parser.add_argument(
        "--runtimes",
        nargs="+",
        default=list(DEFAULT_RUNTIMES),
        metavar="RT",
        help=runtimes_help(default=" ".join(DEFAULT_RUNTIMES)),
    )
    parser.add_argument("--runs", type=int, default=1000, help="timed runs per network (default: 1000)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed warm-up runs (default: 50)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help=f"cap on each network's timed phase in seconds; 0 = no cap (default: {DEFAULT_MAX_SECONDS:g})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the sweep, pooling samples, to spread drift (default: 1)",
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
        help="image side (default: 224; attention: each hybrid's own, 256 / 384, token grids = side/16, side/32)",
    )
    parser.add_argument("--batch-size", type=int, default=1, help="batch size (default: 1)")
    parser.add_argument("--out", default=None, help="output folder (default: ./mobilebone-study/<study>)")
    parser.set_defaults(func=run)


def build_cases(study: str, input_size: int | None, batch_size: int) -> tuple[str, list[Any], list[str]]:
    """The title, cases and report notes of ``study`` at the requested input."""
    from mobilebone.studies import activations, attention, blocks

    if study == "attention":
        notes = [
            "Attention and UIB cases take a feature map, not an image: the input is (batch, C, side/16 or "
            "side/32, same), the map the hybrid's stage sees at that image side.",
            "Paper numbers are MNv4's whole-model ablations (Qin et al. 2024, §3.2-3.3) as transcribed by reviews; "
            "compare directions and ratios, not milliseconds.",
        ]
        return attention.TITLE, attention.cases(input_size, batch_size), notes
    module = activations if study == "activations" else blocks
    notes = [
        "The network (30 conv layers, MobileNet-V1-style) is documented in mobilebone.studies.networks.",
        "Paper numbers are iPhone-12 Core ML latencies (Vasu et al. 2023, §4) as recalled, unverified; compare "
        "ratios, not milliseconds.",
    ]
    return module.TITLE, module.cases(input_size or 224, batch_size), notes


def run(args: argparse.Namespace) -> int:
    """Validate the flags, run the study with a progress bar, print the tables, write the outputs."""
    from mobilebone.cli.common import (
        at_least,
        check_input_size,
        check_output_path,
        check_threads,
        resolve_runtimes,
    )
    from mobilebone.cli.common import console as make_console
    from mobilebone.studies.report import OUTPUT_FILES, write_outputs
    from mobilebone.studies.run import StudySettings

    at_least("--runs", args.runs, 1)
    at_least("--warmup", args.warmup, 0)
    at_least("--batch-size", args.batch_size, 1)
    at_least("--rounds", args.rounds, 1)
    if args.max_seconds < 0:
        raise ValueError(f"--max-seconds must be >= 0, got {args.max_seconds:g}")
    check_input_size(args.input_size)
    threads = check_threads(args.threads)
    runtimes = resolve_runtimes(args.runtimes)
    out = args.out or f"mobilebone-study/{args.study}"
    check_output_path(out)
    if os.path.exists(out) and not os.path.isdir(out):  # fail before minutes of measuring, not after
        raise ValueError(f"--out {out!r} is a file; give a folder")
    title, cases, notes = build_cases(args.study, args.input_size, args.batch_size)
    settings = StudySettings(
        runtimes=runtimes,
        runs=args.runs,
        warmup=args.warmup,
        threads=threads,
        max_seconds=args.max_seconds or None,
        rounds=args.rounds,
    )
    console = make_console()
    console.print(
        f"mobilebone study {args.study}: {len(cases)} networks × {', '.join(runtimes)}, {threads} threads, "
        f"{settings.runs} runs" + (f" (≤ {settings.max_seconds:g} s each)" if settings.max_seconds else "")
    )
    result = _run_with_progress(args.study, title, cases, settings, notes, console)
    _print_tables(result, console)
    write_outputs(result, out)
    console.print(f"wrote {out}/: {', '.join(OUTPUT_FILES)}")
    failed = [r for r in result.rows if r["status"] != "ok"]
    return 1 if failed and len(failed) == len(result.rows) else 0


def _run_with_progress(
    study: str, title: str, cases: list[Any], settings: Any, notes: list[str], console: Any
) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mobilebone.studies.run import run_study

    total = len(cases) * len(settings.runtimes) * settings.rounds
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("measuring", total=total)

        def on_start(case: Any, runtime: str) -> None:
            progress.update(task, description=f"{case.name} ({runtime})")

        def on_done(case: Any, runtime: str) -> None:
            progress.advance(task)  # after the measurement, so the bar shows finished cases

        return run_study(study, title, cases, settings, on_start=on_start, on_done=on_done, notes=notes)


def _print_tables(result: Any, console: Any) -> None:
    from rich.table import Table

    for runtime in result.settings.runtimes:
        table = Table(title=f"study {result.study}: {runtime}")
        for column in ("group", "case", "params (M)", "MMACs", "min ms", "median ms", "× first", "paper"):
            table.add_column(column, justify="left" if column in ("group", "case", "paper") else "right")
        for r in (r for r in result.rows if r["runtime"] == runtime):
            if r["status"] != "ok":
                table.add_row(r["group"], r["case"], "–", "–", "failed", str(r["error"])[:60], "", "")
                continue
            table.add_row(
                r["group"],
                r["case"],
                f"{r['params'] / 1e6:.2f}",
                f"{r['macs'] / 1e6:,.1f}",
                f"{r['min_ms']:.2f}",
                f"{r['median_ms']:.2f}",
                f"{r['vs_baseline']:.2f}×",
                r["paper"],
            )
        console.print(table)
