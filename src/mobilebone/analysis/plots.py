"""Scatter plots of latency against MACs or parameters, one panel per runtime, points labelled by model."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mobilebone.analysis.correlation import rank_correlation
from mobilebone.atomic import atomic_path

# Counted on the form that was timed (deploy unless --train-form; the panel title names it).
AXIS_LABELS = {"macs": "MACs (millions, form timed)", "params": "parameters (millions, form timed)"}
SOURCE_COLORS = {"mobilebone": "tab:red", "torchvision": "tab:blue", "timm": "tab:green"}
KIND_MARKERS = {"convnet": "o", "hybrid": "^", "transformer": "s"}


def short_name(model: str) -> str:
    """Model name without its ``torchvision/`` or ``timm/`` prefix (the colour shows the source)."""
    return model.rsplit("/", 1)[-1]


def scatter_latency(
    groups: Mapping[str, Sequence[dict[str, Any]]],
    predictor: str,
    path: str | Path,
    *,
    latency_key: str = "min_ms",
) -> Path:
    """Write a PNG: ``latency_key`` vs ``predictor`` (log-log), one panel per group, Spearman ρ in each title."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot's import
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter

    panels = max(1, len(groups))
    columns = min(panels, 2)
    rows_n = math.ceil(panels / columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(7.5 * columns, 6 * rows_n), squeeze=False)
    for ax, (label, rows) in zip(axes.flat, groups.items(), strict=False):
        ok = [r for r in rows if r.get("status") == "ok"]
        xs = [float(r[predictor]) / 1e6 for r in ok]
        ys = [float(r[latency_key]) for r in ok]
        for r, x, y in zip(ok, xs, ys, strict=True):
            ax.scatter(
                x,
                y,
                c=SOURCE_COLORS.get(r["source"], "tab:gray"),
                marker=KIND_MARKERS.get(r["kind"], "o"),
                s=36,
                zorder=3,
            )
            ax.annotate(short_name(r["model"]), (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
        rho = rank_correlation(xs, ys, method="spearman", n_resamples=1000)
        ax.set_title(f"{label}\nSpearman ρ = {rho}", fontsize=9)
        ax.set_xlabel(AXIS_LABELS.get(predictor, predictor))
        ax.set_ylabel(f"latency, {latency_key.removesuffix('_ms')} (ms)")
        if xs and min(xs) > 0 and min(ys) > 0:
            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):  # plain numbers instead of 2×10^0-style labels
                axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
                axis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    handles = [
        Line2D([], [], color=color, marker="o", linestyle="", label=source)
        for source, color in SOURCE_COLORS.items()
    ] + [
        Line2D([], [], color="black", marker=marker, linestyle="", label=kind)
        for kind, marker in KIND_MARKERS.items()
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_figure(fig, path, dpi=110)


def save_figure(fig: Any, path: str | Path, *, dpi: int) -> Path:
    """Save a matplotlib figure atomically (``mobilebone.atomic``: the format follows the suffix), then close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)
