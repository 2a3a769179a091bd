"""Numerical comparison of two outputs: the one error measure every verification uses."""

from __future__ import annotations

import torch
from torch import Tensor


def max_relative_error(actual: Tensor, expected: Tensor) -> float:
    """``max |actual − expected| / max |expected|``: the error measure used for all equivalence checks."""
    scale = expected.abs().max().clamp_min(torch.finfo(expected.dtype).tiny)
    return float((actual - expected).abs().max() / scale)
