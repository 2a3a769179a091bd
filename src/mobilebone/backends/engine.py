"""A built deploy candidate (an ``Engine``) and the checks every candidate passes before it is timed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mobilebone.backends.errors import RuntimeMismatch
from mobilebone.numerics import max_relative_error


@dataclass
class Engine:
    """A model compiled for one runtime: ``infer(x)`` returns logits for one batch of the example's shape."""

    runtime: str
    precision: str
    infer: Callable[[Tensor], Tensor]
    artifacts: list[Path] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def check_parity(runtime: str, actual: Tensor, expected: Tensor, rtol: float) -> float:
    """The max relative error of ``actual`` against ``expected``; ``RuntimeMismatch`` beyond ``rtol``."""
    error = max_relative_error(actual.detach().double().cpu(), expected.detach().double().cpu())
    if not error <= rtol:  # NaN fails too
        raise RuntimeMismatch(
            f"{runtime} output differs from PyTorch eager (max relative error {error:.1e} > {rtol:.0e})"
        )
    return error


def logits_of(engine: Engine, images: Tensor) -> Tensor:
    """Run ``engine`` image by image (artifacts have a static batch of one) and stack the logits."""
    return torch.cat([engine.infer(images[i : i + 1]).float() for i in range(len(images))])


def to_tensor(array: Any) -> Tensor:
    """A float32 tensor from a runtime's output (numpy array or tensor)."""
    import numpy as np

    if isinstance(array, Tensor):
        return array.detach().float()
    return torch.from_numpy(np.ascontiguousarray(array)).float()
