"""The full zoo sweep behind docs/benchmarks.md: all 27 models in ONNX Runtime and in PyTorch eager.

Two ``mobilebone bench --models '*'`` invocations into one results folder (``--resume``, so an interrupted
run continues): ONNX Runtime at the usable cores' thread count, then PyTorch eager at 1 thread (eager at
2 threads on a loaded 2-core host stalls on descheduled OpenMP siblings, see docs/benchmarks.md). Then it
writes ``table.md`` (the zoo and correlation tables exactly as docs/benchmarks.md shows them, computed
from ``results.json``) and copies the two correlation figures to ``docs/img/``.

    .venv/bin/python benchmarks/zoo.py [--out benchmarks/results/zoo] [--max-seconds 1] [--table-only]
                                       [--models NAME_OR_GLOB ...] [--docs-img DIR | --no-figures]

``--models`` picks (and orders) the models, default ``*`` (the whole zoo); ``--no-figures`` keeps the
figures in ``--out`` only (for a separate run that must not replace the ones docs/benchmarks.md shows).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from mobilebone.analysis.correlation import latency_correlations
from mobilebone.analysis.report import read_json, write_atomic
from mobilebone.cli.common import usable_cores
from mobilebone.cli.main import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("latency_vs_macs.png", "latency_vs_params.png")
TABLE = "table.md"


def invocations(threads: int) -> list[tuple[str, int]]:
    """(runtime, threads) of each bench invocation, in order."""
    return [("onnxruntime", threads), ("eager", 1)]


def _best(rows: list[dict[str, Any]], model: str, runtime: str) -> dict[str, Any] | None:
    found = [r for r in rows if r["model"] == model and r["runtime"] == runtime and r["status"] == "ok"]
    return found[-1] if found else None


def zoo_table(rows: list[dict[str, Any]], ort_threads: int) -> str:
    """The docs' zoo table: one line per model, sorted by ONNX Runtime minimum latency."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    ort = {m: _best(rows, m, "onnxruntime") for m in models}
    eager = {m: _best(rows, m, "eager") for m in models}
    lines = [
        f"| model | source | kind | params (M) | MMACs | ORT {ort_threads}-thread min (ms) | ORT median (ms) | "
        "ORT runs | eager 1-thread min (ms) | eager median (ms) | eager runs |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in sorted(models, key=lambda m: ort[m]["min_ms"] if ort[m] else float("inf")):
        o, e = ort[m], eager[m]
        ref = o or e
        if ref is None:
            lines.append(f"| {m} | | | | | failed | | | failed | | |")
            continue
        cells = [m, ref["source"], ref["kind"], f"{ref['params'] / 1e6:.2f}", f"{ref['macs'] / 1e6:,.0f}"]
        for r in (o, e):
            cells += (
                [f"{r['min_ms']:.2f}", f"{r['median_ms']:.2f}", str(r["runs"])] if r else ["failed", "", ""]
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def correlation_lines(rows: list[dict[str, Any]], ort_threads: int, n_resamples: int = 2000) -> str:
    """The docs' correlation table (all models, and the ≤ 1 GMAC ones) for both runtimes."""
    order = (("spearman", "macs"), ("spearman", "params"), ("kendall", "macs"), ("kendall", "params"))
    labels = {"onnxruntime": f"ONNX Runtime, {ort_threads} threads", "eager": "PyTorch eager, 1 thread"}
    lines = [
        "| set | runtime | n | Spearman ρ vs MACs | Spearman ρ vs params | Kendall τ vs MACs | Kendall τ vs params |",
        "|---|---|---:|---|---|---|---|",
    ]
    ok = [r for r in rows if r["status"] == "ok"]
    for subset_name, keep in (
        ("all", lambda r: True),
        ("≤ 1 GMAC (mobile-sized)", lambda r: r["macs"] <= 1e9),
    ):
        for runtime, label in labels.items():
            subset = [r for r in ok if r["runtime"] == runtime and keep(r)]
            by = {(c.method, c.x): c for c in latency_correlations(subset, n_resamples=n_resamples)}
            name = f"all {len(subset)}" if subset_name == "all" else subset_name
            cells = [_cell(by[k]) for k in order]
            lines.append(f"| {name} | {label} | {len(subset)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(c: Any) -> str:
    """``+0.91 [+0.77, +0.97]`` (minus signs typeset), or why the correlation is not defined."""
    if not c.defined:
        return str(c)
    return f"{c.estimate:+.2f} [{c.ci_low:+.2f}, {c.ci_high:+.2f}]".replace("-", "−")


def write_table(out: Path, ort_threads: int) -> Path:
    """Write ``table.md`` (zoo table + correlation table) from ``out/results.json``."""
    rows = read_json(out / "results.json")["rows"]
    text = zoo_table(rows, ort_threads) + "\n\n" + correlation_lines(rows, ort_threads) + "\n"
    return write_atomic(out / TABLE, text)


def main() -> int:
    """Run both invocations, then write the docs tables and publish the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "zoo")
    parser.add_argument("--max-seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=usable_cores(), help="ONNX Runtime threads")
    parser.add_argument("--docs-img", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--no-figures", action="store_true", help="do not copy the figures to --docs-img")
    parser.add_argument("--models", nargs="+", default=["*"], help="zoo names or globs, in order")
    parser.add_argument("--table-only", action="store_true", help="only rewrite table.md from results.json")
    args = parser.parse_args()
    if not args.table_only:
        for runtime, threads in invocations(args.threads):
            argv = ["bench", "--models", *args.models, "--runtimes", runtime, "--threads", str(threads)]
            argv += ["--out", str(args.out), "--max-seconds", str(args.max_seconds), "--resume"]
            code = cli_main(argv)
            if code != 0:
                return code
        if not args.no_figures:
            args.docs_img.mkdir(parents=True, exist_ok=True)
            for name in FIGURES:
                shutil.copyfile(args.out / name, args.docs_img / name)
    path = write_table(args.out, args.threads)
    figures = args.out if args.no_figures else args.docs_img
    print(f"wrote {path}; figures in {figures}; the tool's report is {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
