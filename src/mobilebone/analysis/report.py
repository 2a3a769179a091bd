"""Result writers: CSV and JSON of every row (atomic), and the markdown report of a sweep."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mobilebone.analysis.correlation import Correlation
from mobilebone.atomic import atomic_open

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
    "complexity_form",
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
    """Write ``text`` (UTF-8) to ``path`` atomically (``mobilebone.atomic``): never a partial file."""
    with atomic_open(path) as handle:
        handle.write(text.encode("utf-8"))
    return Path(path)


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path, fields: Sequence[str] = ROW_FIELDS) -> Path:
    """One line per row with the ``fields`` columns (default: a sweep's ``ROW_FIELDS``); None → empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
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


def _fmt(value: Any, spec: str, scale: float = 1.0) -> str:
    return "–" if value is None or value == "" else format(value / scale, spec)


def markdown_table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table: ``columns`` are (header, "l" or "r" alignment), ``rows`` their cells."""
    lines = [
        "| " + " | ".join(header for header, _ in columns) + " |",
        "|" + "|".join("---:" if align == "r" else "---" for _, align in columns) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def counted_form(row: dict[str, Any]) -> str:
    """The form a row's params and MACs were counted on (rows written before this field: deploy)."""
    return str(row.get("complexity_form") or "deploy")


def runs_cell(row: dict[str, Any]) -> str:
    """Runs done of runs requested, e.g. ``412/1000`` (fewer when the time cap stopped the timed phase)."""
    return f"{row['runs']}/{row['runs_requested']}"


RESULT_COLUMNS = (
    ("model", "l"),
    ("source", "l"),
    ("kind", "l"),
    ("params (M)", "r"),
    ("MMACs", "r"),
    ("min (ms)", "r"),
    ("median (ms)", "r"),
    ("p90 (ms)", "r"),
    ("mean ± std (ms)", "r"),
    ("runs done/requested", "r"),
)


def results_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of one group's rows, fastest first; failed rows last with their error."""
    ok = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: float(r["min_ms"]))
    failed = [r for r in rows if r.get("status") != "ok"]
    cells = [
        (
            r["model"],
            r["source"],
            r["kind"],
            _fmt(r["params"], ".2f", 1e6),
            _fmt(r["macs"], ",.0f", 1e6),
            f"{r['min_ms']:.2f}",
            f"{r['median_ms']:.2f}",
            f"{r['p90_ms']:.2f}",
            f"{r['mean_ms']:.2f} ± {r['std_ms']:.2f}",
            runs_cell(r),
        )
        for r in ok
    ]
    cells += [
        (r["model"], r["source"], r["kind"], "–", "–", f"failed: {r.get('error')}", "", "", "", "")
        for r in failed
    ]
    return markdown_table(RESULT_COLUMNS, cells)


def correlation_table(correlations: dict[str, list[Correlation]]) -> str:
    """Markdown table: per group, Spearman and Kendall of latency with MACs and with params, with CIs."""
    columns = [("runtime (settings)", "l"), ("n", "r")] + [
        (f"{method} vs {x}", "l")
        for method, x in (
            ("Spearman ρ", "MACs"),
            ("Spearman ρ", "params"),
            ("Kendall τ", "MACs"),
            ("Kendall τ", "params"),
        )
    ]
    cells = []
    for label, results in correlations.items():
        by = {(c.method, c.x): c for c in results}
        keys = [("spearman", "macs"), ("spearman", "params"), ("kendall", "macs"), ("kendall", "params")]
        n = results[0].n if results else 0
        cells.append([label, n, *(_ci(by.get(key)) for key in keys)])
    return markdown_table(columns, cells)


def _ci(c: Correlation | None) -> str:
    if c is None:
        return "–"
    if not c.defined:
        return c.undefined_reason
    return f"{c.estimate:+.2f} [{c.ci_low:+.2f}, {c.ci_high:+.2f}] (p={c.pvalue:.2g})"


def environment_table(env: dict[str, Any]) -> str:
    """Markdown two-column table of an environment dict."""
    lines = ["| | |", "|---|---|"]
    lines += [
        f"| {key} | {value} |" for key, value in env.items() if key not in {"runtime", "form", "threads"}
    ]
    return "\n".join(lines)


def invocations_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The sweep invocations a results file records (a file from before ``invocations``: its one settings block)."""
    if isinstance(document.get("invocations"), list):
        return list(document["invocations"])
    if "settings" in document or "environment" in document:
        return [
            {
                "started_at": (document.get("environment") or {}).get("measured_at"),
                "settings": document.get("settings", {}),
                "environment": document.get("environment", {}),
            }
        ]
    return []


def _values(rows: Sequence[dict[str, Any]], key: str) -> list[Any]:
    """The distinct values of ``key`` over ``rows``, in first-seen order."""
    return list(dict.fromkeys(r.get(key) for r in rows))


def _listed(values: Sequence[Any]) -> str:
    return " / ".join(str(v) for v in values)


def protocol_text(rows: Sequence[dict[str, Any]]) -> str:
    """What every measurement did, read from the rows themselves (a resumed file can mix settings)."""
    warmups = _values(rows, "warmup")
    runs = _values(rows, "runs_requested")
    caps = [c for c in _values(rows, "max_seconds") if c]
    text = (
        f"Latency = one inference at a fixed batch and input size: {_listed(warmups)} warm-up runs, then up to "
        f"{_listed(runs)} timed runs per model and runtime"
    )
    if caps:
        text += (
            f", **the timed phase capped at {_listed([f'{c:g} s' for c in caps])} per model** (warm-up at half "
            "that)"
        )
    return text + (
        ". The minimum is the headline (MobileOne's protocol as commonly cited); median/p90/mean/std are kept, "
        "raw samples are in `results.json`, and every row carries its own settings and environment."
    )


def markdown_report(
    rows: Sequence[dict[str, Any]],
    correlations: dict[str, list[Correlation]],
    *,
    invocations: Sequence[dict[str, Any]] = (),
    figures: Sequence[str] = ("latency_vs_macs.png", "latency_vs_params.png"),
) -> str:
    """The sweep's report: protocol, invocations, environment, one table per group, correlations, figures."""
    ok = [r for r in rows if r.get("status") == "ok"]
    capped = [r for r in ok if r["runs"] < r["runs_requested"]]
    parts = [
        "# mobilebone bench report",
        "",
        f"{len(ok)} measurements ({len(rows) - len(ok)} failed). {protocol_text(rows)}",
        "",
    ]
    if any(r.get("max_seconds") for r in rows):
        parts += [
            f"{len(capped)} of the {len(ok)} measurements stopped at the time cap before their requested "
            "runs; the *runs done/requested* column says how many were done. `--max-seconds 0` removes the "
            "cap.",
            "",
        ]
    mismatched = [r for r in rows if r.get("form") != counted_form(r)]
    parts += [
        "Params and MACs are counted on the form that was timed — deploy (reparameterized) or train-time "
        "(`--train-form`), named in each table's title"
        + (
            f"; except {len(mismatched)} rows written by an older mobilebone, whose counts are of the deploy form."
            if mismatched
            else "."
        ),
        "",
    ]
    if len(invocations) > 1:
        parts += [
            "## Invocations",
            "",
            "Rows of this file come from several runs of `mobilebone bench` (`--resume`); each row records its "
            "own settings and environment in `results.json`.",
            "",
            markdown_table(
                [
                    ("#", "r"),
                    ("started", "l"),
                    ("runtimes", "l"),
                    ("form", "l"),
                    ("threads", "r"),
                    ("runs", "r"),
                ],
                [
                    (
                        i,
                        inv.get("started_at"),
                        ", ".join(inv.get("settings", {}).get("runtimes", [])),
                        inv.get("settings", {}).get("form"),
                        inv.get("settings", {}).get("threads"),
                        inv.get("settings", {}).get("runs"),
                    )
                    for i, inv in enumerate(invocations)
                ],
            ),
            "",
        ]
    if invocations:
        parts += [
            "## Environment (latest invocation)",
            "",
            environment_table(invocations[-1]["environment"]),
            "",
        ]
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
