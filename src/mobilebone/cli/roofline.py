"""``mobilebone roofline``: MobileNetV4's roofline latency model on this machine (arXiv 2404.10518, §3)."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_OUT = "mobilebone-roofline"
MEASURED = "cpu"  # this machine, measured by a short micro-benchmark; other names: vendor presets (data)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``roofline`` subcommand."""
    from mobilebone.analysis.roofline_devices import preset_names

    parser = subparsers.add_parser(
        "roofline",
        help="roofline latency prediction per layer and model; ridge-point sweep; how well it ranks measured latency",
        description=(
            "Per layer: MACs and bytes moved (weights + input and output activations at --precision) of the "
            "deploy model; latency = Σ max(MACs / PeakMACs, bytes / PeakBW) with this CPU's peaks measured by "
            "a matmul and a large copy (or given). --ridge-sweep: which models are on the accuracy-vs-roofline "
            "front at ridge points 0–500 MACs/byte. --results DIR: Spearman ρ of the prediction with the "
            "latency measured by `mobilebone bench`, next to MACs' and params' ρ."
        ),
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="zoo names or globs (default: every zoo model with weights)"
    )
    parser.add_argument(
        "--device",
        default=MEASURED,
        choices=[MEASURED, *preset_names()],
        help=(
            f"{MEASURED}: this machine's peaks, measured; or a named device whose peaks come from its vendor's "
            f"public specification at --precision ({', '.join(preset_names())}; data/roofline_devices.csv)"
        ),
    )
    parser.add_argument("--peak-gmacs", type=float, help="peak GMACs/s instead of measuring it")
    parser.add_argument(
        "--bandwidth-gbs", type=float, help="memory bandwidth in GB/s instead of measuring it"
    )
    parser.add_argument(
        "--precision", default="fp32", choices=("fp32", "fp16", "int8"), help="deployed precision"
    )
    parser.add_argument(
        "--input-size",
        type=int,
        help="square input side (default: each model's weights' resolution, else 224)",
    )
    parser.add_argument(
        "--ridge-sweep", action="store_true", help="Pareto fronts at ridge points 0–500 MACs/byte"
    )
    parser.add_argument(
        "--results",
        metavar="DIR",
        help="bench output folder: rank correlation of prediction vs measured latency",
    )
    parser.add_argument("--accuracy", nargs="+", default=[], metavar="FILE", help="your own accuracy CSV(s)")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads of the micro-benchmark (default: usable cores)"
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT})")
    parser.set_defaults(func=run)


def _hardware(args: argparse.Namespace) -> Any:
    from mobilebone.analysis.roofline import Hardware, measure_hardware
    from mobilebone.cli.common import check_threads

    for flag, value in (("--peak-gmacs", args.peak_gmacs), ("--bandwidth-gbs", args.bandwidth_gbs)):
        if value is not None and not value > 0:
            raise ValueError(f"{flag} must be > 0, got {value:g}")
    if args.peak_gmacs and args.bandwidth_gbs:
        return Hardware("given", args.peak_gmacs * 1e9, args.bandwidth_gbs * 1e9)
    if args.device != MEASURED:
        from mobilebone.analysis.roofline_devices import preset_hardware

        preset = preset_hardware(args.device, args.precision)
        return Hardware(
            preset.name if not (args.peak_gmacs or args.bandwidth_gbs) else f"{args.device}, partly given",
            args.peak_gmacs * 1e9 if args.peak_gmacs else preset.peak_macs,
            args.bandwidth_gbs * 1e9 if args.bandwidth_gbs else preset.bandwidth,
        )
    measured = measure_hardware(check_threads(args.threads))
    return Hardware(
        "this CPU (measured)" if not (args.peak_gmacs or args.bandwidth_gbs) else "this CPU, partly given",
        args.peak_gmacs * 1e9 if args.peak_gmacs else measured.peak_macs,
        args.bandwidth_gbs * 1e9 if args.bandwidth_gbs else measured.bandwidth,
    )


class _Profiles:
    """Per-layer profiles of deploy models, built once per (model, resolution)."""

    def __init__(self, precision: str) -> None:
        self.precision = precision
        self.cache: dict[tuple[str, int], list[Any]] = {}

    def __call__(self, name: str, size: int) -> list[Any]:
        from mobilebone.analysis.roofline import profile_layers
        from mobilebone.analysis.zoo import resolve_models

        if (name, size) not in self.cache:
            (entry,) = resolve_models([name])
            self.cache[(name, size)] = profile_layers(entry.deploy(), size, self.precision)
        return self.cache[(name, size)]


def run(args: argparse.Namespace) -> int:
    """Measure the peaks, profile the models, predict, then the optional sweep and correlation."""
    from pathlib import Path

    from mobilebone.analysis.accuracy import default_entries, load_accuracy
    from mobilebone.analysis.report import markdown_table, write_atomic, write_csv
    from mobilebone.analysis.roofline import predict_seconds
    from mobilebone.analysis.roofline_plot import plot_layers
    from mobilebone.analysis.zoo import resolve_models, zoo
    from mobilebone.cli.common import check_input_size, check_threads
    from mobilebone.cli.common import console as make_console

    check_input_size(args.input_size)
    check_threads(args.threads)
    console = make_console()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    accuracy = default_entries(load_accuracy(args.accuracy))
    names = (
        [e.name for e in resolve_models(args.names)]
        if args.names
        else list(dict.fromkeys(e.model for e in accuracy if e.model in zoo()))
    )
    sizes = {e.model: e.input_size for e in reversed(accuracy)}  # each model's default weights
    hw = _hardware(args)
    console.print(
        f"{hw.name}: {hw.peak_macs / 1e9:.1f} GMACs/s, {hw.bandwidth / 1e9:.1f} GB/s → ridge point "
        f"{hw.ridge_point:.1f} MACs/byte; {args.precision}"
    )
    profiles = _Profiles(args.precision)
    rows = []
    for name in names:
        size = args.input_size or sizes.get(name, 224)
        layers = profiles(name, size)
        seconds = predict_seconds(layers, hw)
        memory = sum(max(0.0, ly.bytes / hw.bandwidth - ly.macs / hw.peak_macs) for ly in layers)
        rows.append(
            {
                "model": name,
                "input_size": size,
                "precision": args.precision,
                "layers": len(layers),
                "macs": sum(ly.macs for ly in layers),
                "bytes": sum(ly.bytes for ly in layers),
                "intensity": sum(ly.macs for ly in layers) / max(1, sum(ly.bytes for ly in layers)),
                "predicted_ms": seconds * 1e3,
                "memory_bound_share": sum(
                    ly.bytes / hw.bandwidth
                    for ly in layers
                    if ly.bytes / hw.bandwidth > ly.macs / hw.peak_macs
                )
                / seconds,
                "time_above_mac_bound_ms": memory * 1e3,
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "roofline.csv", list(rows[0]))
    first = names[0]
    plot_layers(
        profiles(first, rows[0]["input_size"]),
        hw,
        f"{first} @ {rows[0]['input_size']} px",
        out / "roofline_layers.png",
    )
    parts = [
        "# mobilebone roofline",
        "",
        f"{hw.name}: peak {hw.peak_macs / 1e9:.1f} GMACs/s, bandwidth {hw.bandwidth / 1e9:.1f} GB/s, ridge point "
        f"{hw.ridge_point:.1f} MACs/byte; bytes at {args.precision}.",
        "",
        markdown_table(
            [
                ("model", "l"),
                ("px", "r"),
                ("MMACs", "r"),
                ("MB moved", "r"),
                ("MACs/byte", "r"),
                ("predicted ms", "r"),
                ("memory-bound share", "r"),
            ],
            [
                (
                    r["model"],
                    r["input_size"],
                    f"{r['macs'] / 1e6:,.0f}",
                    f"{r['bytes'] / 1e6:.1f}",
                    f"{r['intensity']:.1f}",
                    f"{r['predicted_ms']:.2f}",
                    f"{100 * r['memory_bound_share']:.0f} %",
                )
                for r in rows
            ],
        ),
        "",
        "![per-layer roofline](roofline_layers.png)",
        "",
    ]
    console.print(parts[4])
    if args.ridge_sweep:
        parts += _ridge_sweep(names, accuracy, profiles, out, console, args.input_size)
    if args.results:
        parts += _correlation(args.results, hw, profiles, out, console)
    write_atomic(out / "roofline.md", "\n".join(parts))
    console.print(
        f"wrote {out}/: roofline.md, roofline.csv, roofline_layers.png"
        + (", ridge_sweep.*" if args.ridge_sweep else "")
    )
    return 0


def _ridge_sweep(
    names: list[str], accuracy: list[Any], profiles: _Profiles, out: Any, console: Any, size: int | None
) -> list[str]:
    from mobilebone.analysis.report import markdown_table, write_csv
    from mobilebone.analysis.roofline import RIDGE_POINTS, on_front_by_ridge
    from mobilebone.analysis.roofline_plot import plot_ridge_sweep

    chosen = [e for e in accuracy if e.model in names]
    if len(chosen) < 2:
        raise ValueError("--ridge-sweep needs at least two selected models with a published accuracy")
    layers = [profiles(e.model, size or e.input_size) for e in chosen]
    flags = on_front_by_ridge(layers, [e.top1 for e in chosen])
    labels = [f"{e.weights}@{size or e.input_size}" for e in chosen]
    rows = [
        {
            "weights": label,
            "top1": e.top1,
            **{f"rp_{rp:g}": on for rp, on in zip(RIDGE_POINTS, f, strict=True)},
        }
        for label, e, f in zip(labels, chosen, flags, strict=True)
    ]
    write_csv(rows, out / "ridge_sweep.csv", list(rows[0]))
    plot_ridge_sweep(
        labels, [e.model in _ours() for e in chosen], flags, RIDGE_POINTS, out / "ridge_sweep.png"
    )
    cells = []
    for label, e, f in sorted(zip(labels, chosen, flags, strict=True), key=lambda t: -sum(t[2])):
        share = sum(f) / len(f)
        cells.append(
            (
                f"**{label}**" if e.model in _ours() else label,
                f"{e.top1:.2f}",
                f"{100 * share:.0f} %",
                _ranges(f),
            )
        )
        console.print(f"  {label}: on the front at {100 * share:.0f} % of ridge points ({_ranges(f)})")
    return [
        "## Ridge-point sweep (0–500 MACs/byte)",
        "",
        markdown_table(
            [("weights", "l"), ("top-1", "r"), ("on the front at", "r"), ("ridge points (MACs/byte)", "l")],
            cells,
        ),
        "",
        "![ridge sweep](ridge_sweep.png)",
        "",
    ]


def _ours() -> set[str]:
    from mobilebone import list_models

    return set(list_models())


def _ranges(flags: list[bool]) -> str:
    from mobilebone.analysis.roofline import RIDGE_POINTS

    spans: list[str] = []
    start = None
    for i, on in enumerate([*flags, False]):
        if on and start is None:
            start = i
        if not on and start is not None:
            lo, hi = RIDGE_POINTS[start], RIDGE_POINTS[i - 1]
            spans.append(f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}")
            start = None
    return ", ".join(spans) or "never"


def _correlation(results: str, hw: Any, profiles: _Profiles, out: Any, console: Any) -> list[str]:
    from mobilebone.analysis.correlation import rank_correlation
    from mobilebone.analysis.pareto import read_bench_results
    from mobilebone.analysis.report import markdown_table, write_csv
    from mobilebone.analysis.roofline import predict_seconds

    bench = read_bench_results(results)
    by_runtime: dict[str, list[dict[str, Any]]] = {}
    for row in bench.rows:
        if (
            row.get("status", "ok") == "ok"
            and row.get("min_ms") is not None
            and row.get("form", "deploy") == "deploy"
        ):
            by_runtime.setdefault(row["runtime"], []).append(row)
    if not by_runtime:
        raise ValueError(f"{results}: no successful deploy-form bench rows")
    cells = []
    table = []
    for runtime, rows in by_runtime.items():
        measured = [float(r["min_ms"]) for r in rows]
        predicted = [predict_seconds(profiles(r["model"], int(r["input_size"])), hw) * 1e3 for r in rows]
        for r, p in zip(rows, predicted, strict=True):
            table.append(
                {
                    "runtime": runtime,
                    "model": r["model"],
                    "input_size": r["input_size"],
                    "measured_min_ms": r["min_ms"],
                    "predicted_ms": p,
                    "macs": r["macs"],
                    "params": r["params"],
                }
            )
        for label, xs in (
            ("roofline prediction", predicted),
            ("MACs", [float(r["macs"]) for r in rows]),
            ("params", [float(r["params"]) for r in rows]),
        ):
            rho = rank_correlation(xs, measured, method="spearman", x_name=label, y_name="min_ms")
            cells.append((runtime, label, rho.n, str(rho)))
            console.print(f"  {runtime}: Spearman ρ(measured, {label}) = {rho}")
    write_csv(table, out / "roofline_vs_measured.csv", list(table[0]))
    return [
        f"## Does the roofline rank measured latency? ({bench.label})",
        "",
        "Spearman ρ of the minimum latency measured by `mobilebone bench` with each predictor, 95 % paired-bootstrap CI.",
        "",
        markdown_table(
            [("runtime", "l"), ("predictor", "l"), ("n", "r"), ("Spearman ρ [95 % CI]", "l")], cells
        ),
        "",
    ]
