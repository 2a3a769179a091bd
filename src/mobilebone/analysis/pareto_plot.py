"""Plots of accuracy-vs-cost fronts: points, the front as a step line, ours highlighted, labels kept apart."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobilebone.analysis.pareto import Point, front_of
from mobilebone.analysis.plots import SOURCE_COLORS, save_figure

AXIS_TITLES = {
    "latency": "latency (ms, log scale)",
    "macs": "MACs (millions, log scale)",
    "params": "parameters (millions, log scale)",
}
_SCALE = {"latency": 1.0, "macs": 1e6, "params": 1e6}
# Candidate label offsets (points) tried in order; farther rings come after the near ones are taken.
_OFFSETS = [
    (dx * r, dy * r)
    for r in (1, 2, 3, 4)
    for dx, dy in ((5, 4), (5, -11), (-5, 4), (-5, -11), (0, 9), (0, -16), (12, -4), (-12, -4))
]


def _overlaps(box: Any, others: Sequence[Any]) -> bool:
    return any(box.overlaps(other) for other in others)


def place_labels(
    ax: Any, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str], **kw: Any
) -> list[Any]:
    """Annotate each point with its text at the first offset whose box overlaps no label or marker placed so far.

    Greedy: points are labelled in the given order; each tries ``_OFFSETS`` (near first, then farther
    rings) and keeps the first free spot, else the least-bad (first) one. Returns the annotations.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # the renderer knows text extents only after a draw
    renderer = fig.canvas.get_renderer()
    markers = []
    for x, y in zip(xs, ys, strict=True):
        cx, cy = ax.transData.transform((x, y))
        markers.append(Bbox.from_extents(cx - 3, cy - 3, cx + 3, cy + 3))
    placed: list[Any] = []
    annotations = []
    for i, (x, y, text) in enumerate(zip(xs, ys, texts, strict=True)):
        others_markers = markers[:i] + markers[i + 1 :]
        chosen = None
        for dx, dy in _OFFSETS:
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", **kw)
            box = ann.get_window_extent(renderer)
            inside = ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
            if inside and not _overlaps(box, placed) and not _overlaps(box, others_markers):
                chosen = (ann, box)
                break
            ann.remove()
        if chosen is None:  # crowded: keep the nearest offset rather than drop the label
            ann = ax.annotate(text, (x, y), xytext=_OFFSETS[0], textcoords="offset points", **kw)
            chosen = (ann, ann.get_window_extent(renderer))
        annotations.append(chosen[0])
        placed.append(chosen[1])
    return annotations


def plot_front(
    ax: Any, points: Sequence[Point], axis: str, title: str
) -> tuple[list[float], list[float], list[str]]:
    """One panel: every point, the front as a step line, ours as stars, log cost axis. Returns the labels to place."""
    usable = [p for p in points if p.value(axis) is not None]
    scale = _SCALE[axis]
    front = sorted(front_of(usable, axis), key=lambda p: float(p.value(axis)))  # type: ignore[arg-type]
    on = {id(p) for p in front}
    for p in usable:
        ax.scatter(
            float(p.value(axis)) / scale,  # type: ignore[arg-type]
            p.top1,
            c=SOURCE_COLORS.get(p.source, "tab:gray"),
            s=60 if p.ours else 30,
            marker="*" if p.ours else "o",
            edgecolors="black" if id(p) in on else "none",
            zorder=3,
        )
    if front:
        ax.step(
            [float(p.value(axis)) / scale for p in front],  # type: ignore[arg-type]
            [p.top1 for p in front],
            where="post",
            color="black",
            linewidth=1,
            alpha=0.6,
            zorder=2,
        )
    values = [float(p.value(axis)) / scale for p in usable]  # type: ignore[arg-type]
    if values and min(values) > 0:
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 2, not 2×10^0
        ax.xaxis.set_minor_formatter(NullFormatter())
        pad = math.log10(max(values) / min(values) + 1) * 0.15 + 0.05
        ax.set_xlim(min(values) / 10**pad, max(values) * 10**pad)
    accs = [p.top1 for p in usable]
    if accs:
        ax.set_ylim(min(accs) - 1.0, max(accs) + 1.0)
    ax.set_xlabel(AXIS_TITLES[axis])
    ax.set_ylabel("ImageNet-1k top-1 (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    order = sorted(range(len(usable)), key=lambda i: (not usable[i].ours, -usable[i].top1))
    return [values[i] for i in order], [usable[i].top1 for i in order], [usable[i].label for i in order]


def plot_fronts(panels: Sequence[tuple[str, str, Sequence[Point]]], path: str | Path) -> Path:
    """A PNG with one panel per (title, axis, points), two per row."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot's import
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    n = max(1, len(panels))
    columns = min(n, 2)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(8 * columns, 6.5 * rows), squeeze=False)
    labels = [
        plot_front(ax, points, axis, title)
        for ax, (title, axis, points) in zip(axes.flat, panels, strict=False)
    ]
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    handles = [
        Line2D([], [], color=color, marker="*" if source == "mobilebone" else "o", linestyle="", label=source)
        for source, color in SOURCE_COLORS.items()
    ] + [
        Line2D(
            [], [], color="white", marker="o", markeredgecolor="black", linestyle="", label="on the front"
        ),
        Line2D([], [], color="black", alpha=0.6, label="Pareto front"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    for ax, (xs, ys, texts) in zip(axes.flat, labels, strict=False):  # after the layout: final positions
        place_labels(ax, xs, ys, texts, fontsize=6)
    return save_figure(fig, path, dpi=110)
