"""Roofline figures: per-layer roofline of one model, and front membership across the ridge-point sweep."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mobilebone.analysis.plots import save_figure
from mobilebone.analysis.roofline import Hardware, Layer, layer_seconds


def plot_layers(layers: Sequence[Layer], hw: Hardware, title: str, path: str | Path) -> Path:
    """Each layer at (intensity, attainable GMACs/s) under the roof min(PeakMACs, BW · intensity), log-log."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot's import
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 5))
    work = [layer for layer in layers if layer.macs > 0]
    xs = [layer.intensity for layer in work]
    ys = [layer.macs / layer_seconds(layer, hw) / 1e9 for layer in work]
    sizes = [10 + 200 * layer.macs / max(layer.macs for layer in work) for layer in work]
    colors = ["tab:blue" if layer.intensity >= hw.ridge_point else "tab:orange" for layer in work]
    ax.scatter(xs, ys, s=sizes, c=colors, alpha=0.7, zorder=3)
    grid = np.logspace(np.log10(min(xs) / 2), np.log10(max(max(xs), hw.ridge_point) * 2), 200)
    ax.plot(grid, np.minimum(hw.peak_macs, hw.bandwidth * grid) / 1e9, color="black", linewidth=1.2)
    ax.axvline(hw.ridge_point, color="gray", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (MACs / byte)")
    ax.set_ylabel("attainable GMACs/s (roofline)")
    ax.set_title(
        f"{title}\n{hw.name}: {hw.peak_macs / 1e9:.1f} GMACs/s, {hw.bandwidth / 1e9:.1f} GB/s, "
        f"ridge {hw.ridge_point:.1f} MACs/B; orange = memory-bound, size = MACs",
        fontsize=8,
    )
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_ridge_sweep(
    labels: Sequence[str],
    ours: Sequence[bool],
    on_front: Sequence[Sequence[bool]],
    ridge_points: Sequence[float],
    path: str | Path,
) -> Path:
    """One row per model, a mark at every ridge point where it is on the accuracy-vs-roofline front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.28 * len(labels) + 1.5))
    for row, (flags, mine) in enumerate(zip(on_front, ours, strict=True)):
        xs = [rp for rp, on in zip(ridge_points, flags, strict=True) if on]
        ax.scatter(xs, [row] * len(xs), s=12, marker="s", c="tab:red" if mine else "tab:blue")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_ylim(-0.5, len(labels) - 0.5)
    ax.invert_yaxis()
    ax.set_xlabel("ridge point (MACs / byte): 0 = MAC count only … 500 = accelerator-like")
    ax.set_title("on the accuracy-vs-roofline-latency front (red: mobilebone models)", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
