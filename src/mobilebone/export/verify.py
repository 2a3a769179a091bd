"""Numerical checks of an exported model against the PyTorch deploy model it came from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mobilebone.export.errors import ExportError
from mobilebone.testing import max_relative_error


@dataclass(frozen=True)
class Verification:
    """One comparison: which runtime, which input shape, the error measured and the tolerance."""

    runtime: str
    input_shape: tuple[int, ...]
    max_relative_error: float
    rtol: float

    @property
    def ok(self) -> bool:
        """Whether the error is within the tolerance."""
        return self.max_relative_error <= self.rtol

    def __str__(self) -> str:
        status = "ok" if self.ok else "FAILED"
        return (
            f"{self.runtime} vs torch on {self.input_shape}: max relative error "
            f"{self.max_relative_error:.2e} (tolerance {self.rtol:.0e}) {status}"
        )


def compare(
    runtime: str, x: Tensor, actual: np.ndarray | Tensor, expected: Tensor, rtol: float
) -> Verification:
    """Compare a runtime's output with torch's; raise ``ExportError`` if shapes differ or error > ``rtol``."""
    got = torch.as_tensor(np.asarray(actual), dtype=torch.float64)
    want = expected.detach().to(torch.float64)
    if tuple(got.shape) != tuple(want.shape):
        raise ExportError(
            f"{runtime} output shape {tuple(got.shape)} differs from torch's {tuple(want.shape)} "
            f"on input {tuple(x.shape)}"
        )
    result = Verification(runtime, tuple(x.shape), max_relative_error(got, want), rtol)
    if not result.ok:
        raise ExportError(f"verification failed: {result}")
    return result
