"""The run behind docs/pareto.md: accuracy-vs-latency fronts, `pick`, and the roofline on this machine.

A thin wrapper over ``mobilebone pareto`` (every zoo model with published weights, at its weights'
resolution, in ONNX Runtime at every usable core, then PyTorch eager at 1 thread — eager at 2 threads on
a loaded 2-core machine is scrambled by descheduled OpenMP threads, see docs/benchmarks.md — each pass
``--resume``-able), ``mobilebone pick`` and ``mobilebone roofline --results`` over the same bench rows,
then the same merged with the earlier zoo sweep (``benchmarks/results/zoo``, another machine) and the
roofline with its ridge-point sweep over that sweep's 224-px rows; then, when it has been run, the fronts and
the roofline's rank correlation over the 46-model sweep ``benchmarks/results/zoo_fresh`` (a separate run);
the figures are copied to ``docs/img/``.

    .venv/bin/python benchmarks/pareto.py [--out benchmarks/results/pareto] [--max-seconds 1] [--budget-ms 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
from pathlib import Path

from mobilebone.cli.main import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "benchmarks" / "results" / "zoo"  # the earlier `benchmarks/zoo.py` sweep (another machine)
# The 46-model sweep with the fresher timm peers (`benchmarks/zoo.py --out benchmarks/results/zoo_fresh`).
FRESH = ROOT / "benchmarks" / "results" / "zoo_fresh"
# C's measured peaks (roofline_fresh), given so the sweep's labels do not depend on the load of the day.
SWEEP_PEAKS = ("roofline", "--ridge-sweep", "--peak-gmacs", "54.2", "--bandwidth-gbs", "13.9")
FIGURES = {
    "merged/pareto.png": "pareto_fronts.png",
    "roofline_zoo/ridge_sweep.png": "pareto_ridge_sweep.png",
    "roofline_zoo/roofline_layers.png": "pareto_roofline_layers.png",
}


def main() -> int:
    """Measure, build the fronts, pick under a budget, run the roofline; publish the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pareto")
    parser.add_argument("--max-seconds", type=float, default=1.0)
    parser.add_argument(
        "--passes",
        nargs="+",
        default=["onnxruntime:0", "eager:1"],
        help="RUNTIME:THREADS per pass (0 = every usable core)",
    )
    parser.add_argument("--budget-ms", type=float, nargs="+", default=[1.0, 2.0, 5.0, 20.0, 50.0, 200.0])
    parser.add_argument("--docs-img", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    out = args.out
    for step in args.passes:
        runtime, _, threads = step.partition(":")
        argv = ["pareto", "--out", str(out), "--max-seconds", str(args.max_seconds), "--resume"]
        argv += ["--runtimes", runtime] + (["--threads", threads] if threads and threads != "0" else [])
        code = cli_main(argv)
        if code:
            return code
    bench = out / "bench"
    picks = io.StringIO()
    for budget in args.budget_ms:
        command = ["pick", "--budget-ms", f"{budget:g}", "--results", str(bench)]
        picks.write(f"$ mobilebone {' '.join(command[:3])} --results {bench.relative_to(ROOT)}\n")
        with contextlib.redirect_stdout(picks), contextlib.redirect_stderr(picks):
            code = cli_main(command)
        picks.write(f"(exit {code})\n\n")
    (out / "pick.txt").write_text(picks.getvalue(), encoding="utf-8")
    print(picks.getvalue())
    steps = [
        ["roofline", "--results", str(bench), "--out", str(out / "roofline")],
        ["pareto", "--results", str(ZOO), str(bench), "--all-tags", "--out", str(out / "merged")],
        ["roofline", "--ridge-sweep", "--results", str(ZOO), "--out", str(out / "roofline_zoo")],
    ]
    if (FRESH / "results.json").is_file():  # fronts and roofline ρ of the fresher zoo, a run of its own
        steps += [
            ["pareto", "--results", str(FRESH), "--all-tags", "--out", str(out / "fresh")],
            ["roofline", "--results", str(FRESH), "--out", str(out / "roofline_fresh")],
            # The sweep over every zoo model with weights; the given peaks only label it (RP is swept).
            [*SWEEP_PEAKS, "--out", str(out / "ridge_fresh")],
        ]
    for argv in steps:
        code = cli_main(argv)
        if code:
            return code
    args.docs_img.mkdir(parents=True, exist_ok=True)
    for source, target in FIGURES.items():
        shutil.copyfile(out / source, args.docs_img / target)
    print(f"copied {', '.join(FIGURES.values())} to {args.docs_img}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
