"""Parameter and multiply-accumulate (MAC) counting on ``torch.utils.flop_counter``.

MACs are what the papers call "FLOPs": multiply-adds of convolutions, linear layers and attention
matmuls (torch's counter reports 2 FLOPs per MAC). BatchNorm, activations and pooling are not counted.
torch's counter sees nothing inside the fused CPU ``scaled_dot_product_attention`` kernel, so counting
runs under the MATH backend, whose decomposed matmuls are counted like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@dataclass(frozen=True)
class MacsReport:
    """Total MACs of one forward pass and their split by module and by operator."""

    total: int
    input_shape: tuple[int, ...]
    by_module: dict[str, int] = field(default_factory=dict)
    by_operator: dict[str, int] = field(default_factory=dict)

    def layers(self, depth: int = 2) -> dict[str, int]:
        """MACs of the modules ``depth`` levels below the root (e.g. ``stages.2``), in execution order."""
        return {name: macs for name, macs in self.by_module.items() if name.count(".") == depth - 1}


def _input_shape(model: nn.Module, input_size: int | Sequence[int]) -> tuple[int, ...]:
    in_chans = int(getattr(model, "in_chans", 3))
    if isinstance(input_size, int):
        return (1, in_chans, input_size, input_size)
    size = tuple(int(s) for s in input_size)
    if len(size) == 2:
        return (1, in_chans, *size)
    if len(size) == 3:
        return (1, *size)
    if len(size) == 4:
        return size
    raise ValueError(f"input_size must be N, (H, W), (C, H, W) or (N, C, H, W), got {input_size!r}")


def count_macs(model: nn.Module, input_size: int | Sequence[int] = 224) -> MacsReport:
    """Count the MACs of one eval-mode forward pass at ``input_size`` (batch 1 unless given)."""
    shape = _input_shape(model, input_size)
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(shape, dtype=dtype, device=device)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            model(x)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    by_module: dict[str, int] = {}
    for name, ops in counts.items():
        if name == "Global":
            continue
        key = name.removeprefix(root).lstrip(".")
        if key:
            by_module[key] = sum(ops.values()) // 2
    global_ops = counts.get("Global", {})
    by_operator = {str(op).removeprefix("aten."): n // 2 for op, n in global_ops.items()}
    return MacsReport(counter.get_total_flops() // 2, shape, by_module, by_operator)
