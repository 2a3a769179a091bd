"""Result writers: CSV and JSON of every row (atomic), and the markdown report of a sweep."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobilebone.analysis.correlation import Correlation

# One CSV column per field; raw samples, environment and runtime details go to the JSON only.
ROW_FIELDS = (
    "model",
    "source",
    "kind",
    "runtime",
    "form",
    "batch_size",
    "input_size",
    "threads",
    "runs_requested",
    "warmup",
    "max_seconds",
    "runs",
    "params",
    "macs",
    "min_ms",
    "median_ms",
    "p90_ms",
    "mean_ms",
    "std_ms",
    "status",
    "error",
    "measured_at",
)
GROUP_FIELDS = ("runtime", "form", "batch_size", "input_size", "threads")


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a synced temporary sibling and ``os.replace``: never a partial file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One line per row with the ``ROW_FIELDS`` columns."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in ROW_FIELDS})
    return write_atomic(path, buffer.getvalue())


def write_json(document: dict[str, Any], path: str | Path) -> Path:
    """The whole sweep (settings, environment, rows with raw samples) as indented JSON."""
    return write_atomic(path, json.dumps(document, indent=1, default=str) + "\n")


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a results file written by ``write_json``; a damaged file raises a one-line ``ValueError``."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); move it away to start a fresh sweep") from err
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise ValueError(f"{path} is not a mobilebone bench results file; move it away or pick another --out")
    return document


def group_label(row: dict[str, Any]) -> str:
    """A readable name for a row's measurement settings: runtime, form, batch × size, threads."""
    return (
        f"{row['runtime']}, {row['form']}, batch {row['batch_size']} × {row['input_size']}px, "
        f"{row['threads']} threads"
    )


def group_rows(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows split by measurement settings (correlations are only meaningful within one group)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(group_label(row), []).append(row)
    return groups


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None or value == "" else format(value, spec)


def results_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of one group's rows, fastest first; failed rows last with their error."""
    ok = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: float(r["min_ms"]))
    failed = [r for r in rows if r.get("status") != "ok"]
    lines = [
        "| model | source | kind | params (M) | MMACs | min (ms) | median (ms) | p90 (ms) | mean ± std (ms) | runs |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ok:
        lines.append(
            f"| {r['model']} | {r['source']} | {r['kind']} | {_fmt(r['params'] / 1e6, '.2f')} | "
            f"{_fmt(r['macs'] / 1e6, ',.0f')} | {r['min_ms']:.2f} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | "
            f"{r['mean_ms']:.2f} ± {r['std_ms']:.2f} | {r['runs']}/{r['runs_requested']} |"
        )
    for r in failed:
        lines.append(
            f"| {r['model']} | {r['source']} | {r['kind']} | – | – | failed: {r.get('error')} | | | | |"
        )
    return "\n".join(lines)


def correlation_table(correlations: dict[str, list[Correlation]]) -> str:
    """Markdown table: per group, Spearman and Kendall of latency with MACs and with params, with CIs."""
    lines = [
        "| runtime (settings) | n | Spearman ρ vs MACs | Spearman ρ vs params | Kendall τ vs MACs | Kendall τ vs params |",
        "|---|---:|---|---|---|---|",
    ]
    for label, results in correlations.items():
        by = {(c.method, c.x): c for c in results}
        cells = [
            _ci(by.get(("spearman", "macs"))),
            _ci(by.get(("spearman", "params"))),
            _ci(by.get(("kendall", "macs"))),
            _ci(by.get(("kendall", "params"))),
        ]
        n = results[0].n if results else 0
        lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ci(c: Correlation | None) -> str:
    if c is None:
        return "–"
    return f"{c.estimate:+.2f} [{c.ci_low:+.2f}, {c.ci_high:+.2f}] (p={c.pvalue:.2g})"


def environment_table(env: dict[str, Any]) -> str:
    """Markdown two-column table of an environment dict."""
    lines = ["| | |", "|---|---|"]
    lines += [
        f"| {key} | {value} |" for key, value in env.items() if key not in {"runtime", "form", "threads"}
    ]
    return "\n".join(lines)


def markdown_report(
    rows: Sequence[dict[str, Any]],
    environment: dict[str, Any],
    correlations: dict[str, list[Correlation]],
    settings: dict[str, Any],
    *,
    figures: Sequence[str] = ("latency_vs_macs.png", "latency_vs_params.png"),
) -> str:
    """The sweep's report: settings, environment, one table per runtime, correlations, figures, caveats."""
    cap = settings.get("max_seconds")
    capped = [r for r in rows if r.get("status") == "ok" and r["runs"] < r["runs_requested"]]
    parts = [
        "# mobilebone bench report",
        "",
        f"{len([r for r in rows if r.get('status') == 'ok'])} measurements "
        f"({len([r for r in rows if r.get('status') != 'ok'])} failed). Latency = one inference at batch "
        f"{settings.get('batch_size')}, {settings.get('input_size')}×{settings.get('input_size')}, "
        f"{settings.get('warmup')} warm-up runs, then up to {settings.get('runs')} timed runs; the minimum is the "
        "headline (MobileOne's protocol as commonly cited), median/p90/mean/std are kept, raw samples are in "
        "`results.json`. Params and MACs are of the deploy (reparameterized) form; models were timed in the "
        f"{settings.get('form')} form.",
        "",
    ]
    if cap:
        parts += [
            f"Each model's timed phase was capped at {cap:g} s (warm-up at {cap / 2:g} s); "
            f"{len(capped)} of the measurements stopped before {settings.get('runs')} runs — the `runs` column "
            "says how many were done. Use `--max-seconds 0` for the full count.",
            "",
        ]
    parts += ["## Environment", "", environment_table(environment), ""]
    for label, group in group_rows(rows).items():
        parts += [f"## {label}", "", results_table(group), ""]
    parts += [
        "## Does latency follow MACs or parameters?",
        "",
        "Rank correlation of the minimum latency with MACs and with parameters across the models above, "
        "with 95 % paired-bootstrap confidence intervals (models resampled). The MobileOne paper reports "
        "(as cited by reviews; the values themselves are unverified) a moderate Spearman correlation with "
        "FLOPs on iPhone 12, a weak one with parameters, and lower correlations still on a desktop CPU.",
        "",
        correlation_table(correlations),
        "",
    ]
    parts += [f"![{Path(name).stem}]({name})" for name in figures]
    parts += [
        "",
        "Absolute latencies depend on what else the machine is doing; rank correlations and same-run "
        "ratios are much more robust to that than the milliseconds are.",
        "",
    ]
    return "\n".join(parts)
