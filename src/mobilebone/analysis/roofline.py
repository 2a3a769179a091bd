"""MobileNetV4's roofline latency model (arXiv 2404.10518, §3): per layer max(MACs / PeakMACs, bytes / PeakBW).

A layer's bytes are its weights plus its input and output activations at the deployed precision; the
model's predicted latency is the sum over layers. Hardware is summarized by its ridge point
RP = PeakMACs / PeakBW (MACs per byte): low RP (CPUs) is compute-bound almost everywhere, high RP
(accelerators) makes activation-heavy layers memory-bound. The paper sweeps RP from 0 to 500 and asks
which models stay on the accuracy-vs-latency front across the sweep.

Layers are the leaf modules that do multiply-adds or hold weights (convolutions, linear layers, norms
left in the deploy form), plus the matmuls a non-leaf module does itself (attention). Parameter-free
leaves (activations, pooling) are taken as fused into their producer, as deploy runtimes do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}
# The paper's sweep: ridge points from 0 (pure MAC count) to 500 MACs/byte.
RIDGE_POINTS = tuple(float(r) for r in range(0, 501, 10))


@dataclass(frozen=True)
class Layer:
    """One layer's work: multiply-adds and the bytes it moves (weights, input, output)."""

    name: str
    op: str
    macs: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int

    @property
    def bytes(self) -> int:
        """Bytes moved: weights + input + output activations."""
        return self.weight_bytes + self.input_bytes + self.output_bytes

    @property
    def intensity(self) -> float:
        """Operational intensity, MACs per byte."""
        return self.macs / self.bytes if self.bytes else math.inf


@dataclass(frozen=True)
class Hardware:
    """A machine as the roofline sees it: peak MACs/s and memory bandwidth (bytes/s)."""

    name: str
    peak_macs: float
    bandwidth: float

    @property
    def ridge_point(self) -> float:
        """MACs per byte at which a layer turns from memory- to compute-bound."""
        return self.peak_macs / self.bandwidth


def layer_seconds(layer: Layer, hw: Hardware) -> float:
    """max(MACs / PeakMACs, bytes / PeakBW)."""
    return max(layer.macs / hw.peak_macs, layer.bytes / hw.bandwidth)


def predict_seconds(layers: Sequence[Layer], hw: Hardware) -> float:
    """The roofline latency: the sum of the layer times."""
    return sum(layer_seconds(layer, hw) for layer in layers)


def relative_cost(layers: Sequence[Layer], ridge_point: float) -> float:
    """Latency in units of 1 / PeakMACs at a ridge point: Σ max(MACs, RP · bytes) (RP = 0 → total MACs)."""
    return float(sum(max(layer.macs, ridge_point * layer.bytes) for layer in layers))


def _tensor_bytes(value: object, per_element: int) -> int:
    if isinstance(value, Tensor):
        return value.numel() * per_element
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v, per_element) for v in value)
    if isinstance(value, dict):
        return sum(_tensor_bytes(v, per_element) for v in value.values())
    return 0


def profile_layers(model: nn.Module, input_size: int, precision: str = "fp32") -> list[Layer]:
    """The layers of one batch-1 eval forward pass at ``input_size``, with MACs and bytes at ``precision``."""
    if precision not in BYTES_PER_ELEMENT:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(BYTES_PER_ELEMENT)}")
    per = BYTES_PER_ELEMENT[precision]
    names = {module: name for name, module in model.named_modules()}
    io: dict[str, list[int]] = {}
    order: list[str] = []

    def hook(module: nn.Module, args: tuple[object, ...], output: object) -> None:
        name = names[module]
        if name not in io:
            io[name] = [0, 0]
            order.append(name)
        io[name][0] += _tensor_bytes(args, per)
        io[name][1] += _tensor_bytes(output, per)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    counter = FlopCounterMode(display=False)
    x = torch.zeros(1, int(getattr(model, "in_chans", 3)), input_size, input_size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    root = type(model).__name__
    macs = {
        key.removeprefix(root).lstrip("."): sum(ops.values()) // 2
        for key, ops in counter.get_flop_counts().items()
        if key != "Global"
    }
    modules = dict(model.named_modules())
    layers = []
    for name in order:
        module = modules[name]
        children = [f"{name}.{c}" if name else c for c, _ in module.named_children()]
        own = sum(p.numel() for p in module.parameters(recurse=False)) * per
        total = macs.get(name, 0)
        inner = total - sum(macs.get(c, 0) for c in children)
        if not children and (own or total):
            layers.append(Layer(name, type(module).__name__, total, own, *io[name]))
        elif children and inner > 0:  # matmuls a module does itself (attention): its activations move
            layers.append(Layer(f"{name} (own ops)", type(module).__name__, inner, own, *io[name]))
        elif children and own:  # weights used elementwise (layer scale, position embedding): fused
            layers.append(Layer(f"{name} (own weights)", type(module).__name__, 0, own, 0, 0))
    return layers


def measure_hardware(threads: int | None = None, *, repeats: int = 5) -> Hardware:
    """This CPU's peak fp32 MACs/s (1024² matmul) and memory bandwidth (64 MiB copy: read + write), best of ``repeats``."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        n = 1024
        a, b = torch.randn(n, n), torch.randn(n, n)
        src = torch.randn(16 * 1024 * 1024)  # 64 MiB: larger than any last-level cache
        dst = torch.empty_like(src)
        torch.mm(a, b)
        dst.copy_(src)
        best_mm = best_copy = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best_mm = min(best_mm, time.perf_counter() - start)
            start = time.perf_counter()
            dst.copy_(src)
            best_copy = min(best_copy, time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return Hardware("this CPU (measured)", n**3 / best_mm, 2 * src.numel() * 4 / best_copy)


def on_front_by_ridge(
    costs: Sequence[Sequence[Layer]],
    accuracies: Sequence[float],
    ridge_points: Sequence[float] = RIDGE_POINTS,
) -> list[list[bool]]:
    """For each model (row) and ridge point (column): is it on the accuracy-vs-roofline-latency front?"""
    from mobilebone.analysis.pareto import pareto_front

    columns = [
        pareto_front([relative_cost(layers, rp) for layers in costs], accuracies) for rp in ridge_points
    ]
    return [[column[i] for column in columns] for i in range(len(costs))]
