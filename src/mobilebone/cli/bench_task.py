"""``mobilebone bench --task``: task models beside torchvision's MobileNetV3 detector / segmenters, one run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mobilebone.analysis.runtimes import AUTO

# Flags of the classification sweep that have no meaning for the task comparison: refused, not ignored.
_UNSUPPORTED = {"resume": "--resume"}


def run_task(args: argparse.Namespace, console: Any) -> int:
    """Validate the flags, time the task models with their references, print the table, write the JSON."""
    from mobilebone.cli.common import (
        at_least,
        check_input_size,
        check_output_path,
        check_threads,
        split_names,
    )
    from mobilebone.tasks.registry import get_task_entry, list_task_models

    task = args.task
    if args.list:
        for name in list_task_models(task):
            print(f"{name:45s} vs {get_task_entry(name).head.reference.rsplit(':', 1)[-1]}")
        return 0
    for attr, flag in _UNSUPPORTED.items():
        if getattr(args, attr):
            raise ValueError(f"{flag} is not supported with --task")
    if split_names(args.runtimes) not in ([AUTO], ["eager"]):
        raise ValueError("--task times in PyTorch eager only; drop --runtimes or use --runtimes eager")
    at_least("--runs", args.runs, 1)
    at_least("--batch-size", args.batch_size, 1)
    at_least("--warmup", args.warmup, 0)
    at_least("--max-seconds", args.max_seconds, 0)
    check_input_size(args.input_size)
    threads = check_threads(args.threads)
    out = check_output_path(args.out)

    from mobilebone.tasks.bench import TaskBenchSettings, bench_task, resolve_task_models

    names = resolve_task_models(task, split_names(args.models) if args.models else None)
    settings = TaskBenchSettings(
        task=task,
        threads=threads,
        runs=args.runs,
        warmup=args.warmup,
        input_size=args.input_size,
        batch_size=args.batch_size,
        deploy=not args.train_form,
        max_seconds=args.max_seconds or None,
    )
    form = "deploy" if settings.deploy else "train-time"
    console.print(
        f"mobilebone bench --task {task}: {len(names)} models ({form} form) each interleaved with its "
        f"torchvision reference (eval), batch {settings.batch_size}×{settings.size}px, {threads} threads, "
        f"{settings.runs} runs requested, PyTorch eager"
    )

    def on_row(row: dict[str, Any]) -> None:
        if row["status"] != "ok":
            console.print(f"[red]{row['model']} failed:[/red] {row['error']}")
        else:
            console.print(
                f"{row['model']}: {row['min_ms']:.1f} ms, ×{row['ratio_min']:.2f} {row['reference']}"
            )

    document = bench_task(names, settings, on_row=on_row)
    path = Path(out) / f"bench_{task}.json"
    from mobilebone.analysis.report import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(document, indent=1) + "\n")
    _print_table(document, console)
    console.print(f"wrote {path}")
    return 0 if all(r["status"] == "ok" for r in document["rows"]) else 1


def _print_table(document: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    settings = document["settings"]
    table = Table(title=f"{settings['task']} at {settings['input_size']} px ({settings['timed']})")
    for column in ("model", "params (M)", "MMACs", "min ms", "reference", "ref min ms", "ratio (min)"):
        table.add_column(column, justify="left" if column in ("model", "reference") else "right")
    for name, ref in document["references"].items():
        table.add_row(name, f"{ref['params'] / 1e6:.2f}", f"{ref['macs'] / 1e6:,.0f}", "", "", "", "1.00")
    for r in sorted((r for r in document["rows"] if r["status"] == "ok"), key=lambda r: r["ratio_min"]):
        table.add_row(
            r["model"],
            f"{r['params'] / 1e6:.2f}",
            f"{r['macs'] / 1e6:,.0f}",
            f"{r['min_ms']:.2f}",
            r["reference"],
            f"{r['reference_min_ms']:.2f}",
            f"{r['ratio_min']:.2f}",
        )
    console.print(table)
