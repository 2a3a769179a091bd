"""Pareto results as files: the points with their front flags (CSV, JSON) and a markdown report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobilebone.analysis.pareto import (
    AXES,
    CONSENSUS,
    BenchResults,
    Point,
    consensus,
    front_counts,
    front_labels,
    groups,
)
from mobilebone.analysis.report import markdown_table, write_atomic, write_csv

POINT_FIELDS = (
    "machine",
    "runtime",
    "model",
    "tag",
    "input_size",
    "source",
    "kind",
    "top1",
    "accuracy_source",
    "latency_ms",
    "macs",
    "params",
    "front_latency",
    "front_macs",
    "front_params",
    "consensus",
    "fronts_of_machines",
)


def point_rows(points: Sequence[Point]) -> list[dict[str, Any]]:
    """One dict per point with its front memberships (per machine × runtime) and cross-machine verdict."""
    verdicts = consensus(points)
    counts = front_counts(points)
    out = []
    for (_, runtime), group in groups(points).items():
        fronts = {axis: front_labels(group, axis) for axis in AXES}
        for p in group:
            out.append(
                {
                    "machine": p.machine,
                    "runtime": runtime,
                    "model": p.model,
                    "tag": p.tag,
                    "input_size": p.input_size,
                    "source": p.source,
                    "kind": p.kind,
                    "top1": p.top1,
                    "accuracy_source": p.accuracy_source,
                    "latency_ms": round(p.latency_ms, 4),
                    "macs": p.macs,
                    "params": p.params,
                    **{f"front_{axis}": p.label in fronts[axis] for axis in AXES},
                    "consensus": verdicts[(runtime, p.label)],
                    "fronts_of_machines": "{}/{}".format(*counts[(runtime, p.label)]),
                }
            )
    return out


def _mark(flag: bool) -> str:
    return "●" if flag else ""


def front_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of one machine × runtime: fastest first, ● where on the front of that axis."""
    ordered = sorted(rows, key=lambda r: r["latency_ms"])
    columns = [
        ("weights", "l"),
        ("px", "r"),
        ("source", "l"),
        ("top-1 (%)", "r"),
        ("latency (ms)", "r"),
        ("MMACs", "r"),
        ("params (M)", "r"),
        ("front: latency", "l"),
        ("front: MACs", "l"),
        ("front: params", "l"),
    ]
    cells = [
        (
            f"**{r['model']}.{r['tag']}**" if r["source"] == "mobilebone" else f"{r['model']}.{r['tag']}",
            r["input_size"],
            r["source"],
            f"{r['top1']:.2f}",
            f"{r['latency_ms']:.2f}",
            "–" if r["macs"] is None else f"{r['macs'] / 1e6:,.0f}",
            "–" if r["params"] is None else f"{r['params'] / 1e6:.2f}",
            _mark(r["front_latency"]),
            _mark(r["front_macs"]),
            _mark(r["front_params"]),
        )
        for r in ordered
    ]
    return markdown_table(columns, cells)


def consensus_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table: per runtime and weights, on the latency front of every / most / some / no machine."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        seen.setdefault((r["runtime"], f"{r['model']}.{r['tag']}@{r['input_size']}"), r)
    ordered = sorted(seen.items(), key=lambda kv: (kv[0][0], CONSENSUS.index(kv[1]["consensus"]), kv[0][1]))
    cells = [(runtime, label, r["consensus"], r["fronts_of_machines"]) for (runtime, label), r in ordered]
    columns = [("runtime", "l"), ("weights", "l"), ("on the front of", "l"), ("fronts / machines timed", "r")]
    return markdown_table(columns, cells)


def environment_line(results: BenchResults) -> str:
    """One line naming the machine a results folder was recorded on."""
    env = results.environment
    if not env:
        return f"- **{results.label}**: environment not recorded (CSV only)"
    return (
        f"- **{results.label}**: {env.get('cpu', '?')}, {env.get('usable_cores', '?')} usable cores, "
        f"{env.get('os', '?')}, onnxruntime {env.get('onnxruntime_version', '–')}, "
        f"torch {env.get('torch_version', '–')}{_load(results)}"
    )


def _load(results: BenchResults) -> str:
    """``; 1-min load average 2.7–9.1 while measuring`` from the rows' environments, if they recorded it."""
    loads = [
        float(row["environment"]["load_average"][0])
        for row in results.rows
        if isinstance(row.get("environment"), dict) and row["environment"].get("load_average")
    ]
    if not loads:
        return ""
    return f"; 1-min load average {min(loads):.1f}–{max(loads):.1f} while measuring ({len(loads)} rows)"


def markdown(
    rows: Sequence[dict[str, Any]],
    results: Sequence[BenchResults],
    missing: Sequence[str],
    *,
    stat: str,
    figure: str | None,
) -> str:
    """The pareto report: machines, one table per machine × runtime, the cross-machine table, the figure."""
    parts = [
        "# mobilebone pareto report",
        "",
        f"ImageNet-1k top-1 (published, see `accuracy_source`) against latency ({stat.removesuffix('_ms')} of "
        "the bench runs, at each weights' eval resolution), MACs and parameters. ● = on the Pareto front "
        "of that axis (no other point is both cheaper-or-equal and at least as accurate).",
        "",
        "## Machines",
        "",
        *[environment_line(r) for r in results],
        "",
    ]
    by_group: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_group.setdefault((r["machine"], r["runtime"]), []).append(r)
    for (machine, runtime), group in by_group.items():
        parts += [f"## {machine}: {runtime}", "", front_table(group), ""]
    if len(results) > 1:
        parts += ["## Across machines", "", consensus_table(rows), ""]
    if missing:
        parts += [
            "Timed but without a published accuracy at the timed resolution (left out): "
            + ", ".join(f"`{m}`" for m in missing),
            "",
        ]
    if figure:
        parts += [f"![pareto]({figure})", ""]
    return "\n".join(parts)


def write_outputs(rows: Sequence[dict[str, Any]], text: str, out_dir: Path) -> list[Path]:
    """``pareto.csv``, ``pareto.json`` and ``pareto.md`` in ``out_dir`` (each written atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_csv(rows, out_dir / "pareto.csv", POINT_FIELDS),
        write_atomic(out_dir / "pareto.json", json.dumps({"points": list(rows)}, indent=1) + "\n"),
        write_atomic(out_dir / "pareto.md", text),
    ]
