"""Helpers for verifying numerical equivalence (used by the test-suite and by ``verify`` commands)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.no_grad()
def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics, in place: γ, var ~ U[0.5, 1.5]; β, mean ~ 0.2·N(0, 1).

    Freshly initialised BatchNorms (mean 0, var 1, γ 1, β 0) hide fusion bugs; these values keep
    activations O(1) through deep networks so relative errors stay meaningful.
    """
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            channels = module.num_features
            if module.weight is not None:
                module.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
                module.bias.copy_(0.2 * torch.randn(channels, generator=generator))
            if module.running_mean is not None and module.running_var is not None:
                module.running_mean.copy_(0.2 * torch.randn(channels, generator=generator))
                module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
    return model


def max_relative_error(actual: Tensor, expected: Tensor) -> float:
    """``max |actual − expected| / max |expected|``: the error measure used for all equivalence checks."""
    scale = expected.abs().max().clamp_min(torch.finfo(expected.dtype).tiny)
    return float((actual - expected).abs().max() / scale)
