"""A study's outputs: results.csv, results.json, report.md and latency.png, each written atomically.

The writers and table helpers are ``mobilebone.analysis.report``'s (the ``bench`` report); only the
columns and the report's layout are the study's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobilebone.analysis import report as bench_report
from mobilebone.analysis.plots import save_figure
from mobilebone.analysis.report import environment_table, markdown_table, write_atomic, write_json
from mobilebone.studies.run import StudyResult

CSV_FIELDS = (
    "group",
    "case",
    "description",
    "runtime",
    "form",
    "input_shape",
    "params",
    "macs",
    "runs",
    "runs_requested",
    "min_ms",
    "median_ms",
    "p90_ms",
    "mean_ms",
    "std_ms",
    "vs_baseline",
    "paper",
    "status",
    "error",
)
OUTPUT_FILES = ("results.csv", "results.json", "report.md", "latency.png")
# Of the latency, why MACs miss part of it: the counter sees conv/linear/attention matmuls only.
MACS_NOTE = (
    "MACs count convolutions, linear layers and attention matmuls only (`mobilebone.analysis.count_macs`); "
    "elementwise work — activations, the dynamic activations' coefficient arithmetic, SE scaling, residual "
    "adds, softmax — is not counted, so its cost shows up only in the latency. That gap is the papers' point: "
    "equal MACs, unequal latency."
)


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One line per case × runtime with the ``CSV_FIELDS`` columns (raw samples are in the JSON)."""
    return bench_report.write_csv(rows, path, CSV_FIELDS)


def _ms(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}"


RESULT_COLUMNS = (
    ("group", "l"),
    ("case", "l"),
    ("params (M)", "r"),
    ("MMACs", "r"),
    ("min (ms)", "r"),
    ("median (ms)", "r"),
    ("× first of group", "r"),
    ("runs done/requested", "r"),
    ("paper", "l"),
)


def results_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of one runtime's rows, in study order, grouped by their ``group``."""
    cells = []
    for r in rows:
        if r.get("status") != "ok":
            cells.append(
                (r["group"], r["case"], "–", "–", f"failed: {r.get('error')}", "", "", "", r["paper"])
            )
            continue
        ratio = "–" if r.get("vs_baseline") is None else f"{r['vs_baseline']:.2f}×"
        cells.append(
            (
                r["group"],
                r["case"],
                f"{r['params'] / 1e6:.2f}",
                f"{r['macs'] / 1e6:,.1f}",
                _ms(r["min_ms"]),
                _ms(r["median_ms"]),
                ratio,
                bench_report.runs_cell(r),
                r["paper"] or "–",
            )
        )
    return markdown_table(RESULT_COLUMNS, cells)


def comparison_table(
    rows: Sequence[dict[str, Any]],
    runtimes: Sequence[str],
    *,
    groups: Sequence[str] | None = None,
    paper: bool = True,
) -> str:
    """Markdown table with the runtimes side by side: per case, min latency and × first of group in each.

    ``groups`` keeps only those groups (default: all); the group name is written once, on its first row.
    This is the table ``docs/studies.md`` quotes, so the docs can be checked against ``results.json``.
    """
    by_key = {(r["case"], r["runtime"]): r for r in rows}
    cases = [r for r in rows if r["runtime"] == runtimes[0] and (groups is None or r["group"] in groups)]
    columns = [("group", "l"), ("case", "l"), ("params (M)", "r"), ("MMACs", "r")]
    for runtime in runtimes:
        columns += [(f"{runtime} min (ms)", "r"), (f"{runtime} ×", "r")]
    if paper:
        columns.append(("paper", "l"))
    cells, previous = [], None
    for first in cases:
        line = [first["group"] if first["group"] != previous else "", first["case"]]
        previous = first["group"]
        line += [f"{first['params'] / 1e6:.2f}", f"{first['macs'] / 1e6:,.1f}"]
        for runtime in runtimes:
            r = by_key.get((first["case"], runtime), {})
            ok = r.get("status") == "ok"
            line += [_ms(r.get("min_ms")) if ok else "failed", f"{r['vs_baseline']:.2f}" if ok else "–"]
        if paper:
            line.append(first["paper"] or "–")
        cells.append(line)
    return markdown_table(columns, cells)


def case_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown list of the cases and what each one is."""
    seen: dict[str, str] = {}
    for r in rows:
        seen.setdefault(r["case"], f"{r['description']} (input {r['input_shape']}, {r['form']} form)")
    return "\n".join(f"- **{name}**: {text}" for name, text in seen.items())


def markdown_report(result: StudyResult, figure: str = "latency.png") -> str:
    """The study's report: what was run, the environment, one table per runtime, the chart, the caveats."""
    s = result.settings
    parts = [
        f"# mobilebone study {result.study}: {result.title}",
        "",
        f"Runtimes: {', '.join(s.runtimes)}. Each case: {s.warmup} warm-up runs, then up to {s.runs} timed "
        "single inferences"
        + (f" (timed phase capped at {s.max_seconds:g} s)" if s.max_seconds else "")
        + (f", repeated over {s.rounds} interleaved rounds" if s.rounds > 1 else "")
        + f", {s.threads or 'default'} threads. The minimum is the headline; raw samples are in `results.json`.",
        "",
        MACS_NOTE,
        "",
        "## Cases",
        "",
        case_table(result.rows),
        "",
    ]
    if len(s.runtimes) > 1:
        parts += ["## Runtimes side by side", "", comparison_table(result.rows, s.runtimes), ""]
    for runtime in s.runtimes:
        rows = [r for r in result.rows if r["runtime"] == runtime]
        parts += [f"## {runtime}", "", results_table(rows), ""]
    parts += [f"![latency]({figure})", ""]
    if result.notes:
        parts += ["## Notes", "", *[f"- {note}" for note in result.notes], ""]
    parts += ["## Environment", "", environment_table(result.environment), ""]
    return "\n".join(parts)


def bar_chart(result: StudyResult, path: str | Path) -> Path:
    """PNG, one panel per runtime: min latency per case (× first case of its group when there are several
    groups, whose scales differ), bars coloured by group, MACs written on each bar."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot's import
    import matplotlib.pyplot as plt

    runtimes = list(result.settings.runtimes)
    cases = list(dict.fromkeys(r["case"] for r in result.rows))
    groups = list(dict.fromkeys(r["group"] for r in result.rows))
    relative = len(groups) > 1
    colors = plt.get_cmap("tab10")
    fig, axes = plt.subplots(
        len(runtimes), 1, figsize=(max(6.0, 0.5 * len(cases) + 2), 3.4 * len(runtimes) + 0.6), squeeze=False
    )
    for ax, runtime in zip(axes[:, 0], runtimes, strict=True):
        rows = {r["case"]: r for r in result.rows if r["runtime"] == runtime}
        for i, name in enumerate(cases):
            r = rows.get(name)
            if r is None or r.get("status") != "ok":
                ax.text(i, 0, "failed", rotation=90, ha="center", va="bottom", fontsize=7, color="red")
                continue
            height = r["vs_baseline"] if relative else r["min_ms"]
            ax.bar(i, height, color=colors(groups.index(r["group"]) % 10), zorder=3)
            ax.text(i, height, f"{r['macs'] / 1e6:.0f}M", ha="center", va="bottom", fontsize=6)
        if relative:
            ax.axhline(1.0, color="black", linewidth=0.6, zorder=4)
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(cases, rotation=35, ha="right", fontsize=7)
        ax.set_ylabel("min latency, × first of group" if relative else "min latency (ms)")
        ax.set_title(f"study {result.study}, {runtime} (bar label = MACs)", fontsize=9)
        ax.grid(axis="y", alpha=0.3, zorder=0)
    if relative:
        handles = [plt.Rectangle((0, 0), 1, 1, color=colors(i % 10)) for i in range(len(groups))]
        fig.legend(handles, groups, loc="lower center", ncol=min(len(groups), 3), fontsize=7)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def write_outputs(result: StudyResult, out_dir: str | Path) -> list[Path]:
    """Write every output file of ``OUTPUT_FILES`` into ``out_dir`` (created if needed)."""
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {str(folder)!r} is a file; give a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_csv(result.rows, folder / "results.csv"),
        write_json(result.to_document(), folder / "results.json"),
        write_atomic(folder / "report.md", markdown_report(result)),
        bar_chart(result, folder / "latency.png"),
    ]
