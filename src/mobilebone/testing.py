"""Test helpers: non-trivial BatchNorm and layer-scale values that expose fusion bugs.

Production code does not import this module; ``max_relative_error`` lives in ``mobilebone.numerics`` and is
re-exported here for the tests.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mobilebone.numerics import max_relative_error

__all__ = [
    "calibrate_batchnorm",
    "float32_error",
    "max_relative_error",
    "randomize_batchnorm",
    "randomize_layer_scale",
]


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


@torch.no_grad()
def randomize_layer_scale(model: nn.Module, seed: int = 0) -> nn.Module:
    """Set every layer-scale γ to U[0.5, 1.5], in place (the 1e-5 init makes the hybrids' blocks vanish).

    Any module whose class name starts with ``LayerScale`` and that holds a ``gamma`` parameter counts,
    so timm's ``LayerScale2d`` is covered as well as ours.
    """
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        gamma = getattr(module, "gamma", None)
        if type(module).__name__.startswith("LayerScale") and isinstance(gamma, nn.Parameter):
            gamma.copy_(0.5 + torch.rand(gamma.shape, generator=generator))
    return model


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, x: Tensor) -> nn.Module:
    """Set every BN's running statistics to those of ``x``'s activations (one train-mode pass); eval mode.

    With γ = O(1), statistics unrelated to the activations (``randomize_batchnorm`` alone) let the hybrids'
    residual stream grow to ~1e4 and attention logits to ~1e5, and MobileOne-S4's activations to ~1e6,
    which saturates its Squeeze-Excite gates: such a network amplifies float32 rounding by ~1e3 and barely
    depends on some of its blocks, which would hide or fake a fusion error. Calibrated statistics are
    non-trivial (means ≠ 0, variances ≠ 1) and keep activations O(1) on ``x``, as in a trained net.
    Evaluate on ``x`` itself (or a batch containing it) where the deep stages see only a few positions:
    at 64 px, statistics from a handful of other images can still leave some channels amplifying.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: after one batch, exactly its statistics
    model.train()
    model(x)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return model.eval()


@torch.no_grad()
def float32_error(model: nn.Module, x: Tensor) -> float:
    """How far ``model``'s float32 output on ``x`` is from its float64 output (``max_relative_error``).

    A randomly initialised deep network can amplify float32 rounding (MobileOne-S4's Squeeze-Excite gates
    do, see ``calibrate_batchnorm``); a second float32 implementation of the same graph (ONNX Runtime)
    cannot be expected to agree with torch more closely than about twice this.
    """
    import copy

    model = model.eval()
    reference = copy.deepcopy(model).double()
    outputs, references = model(x.float()), reference(x.double())
    pairs = zip(outputs, references, strict=True) if isinstance(outputs, tuple) else [(outputs, references)]
    return max(max_relative_error(out.double(), ref) for out, ref in pairs)


# The three ways a model exists, for tests parametrized over forms: the train-time form, the deploy form built
# directly (``deploy=True``) and the deploy form reached by ``reparameterize_model``.
FORMS = ("train", "built", "fused")


def model_in_form(name: str, form: str, *, seed: int) -> nn.Module:
    """``name`` in ``form`` (one of ``FORMS``), eval mode, BatchNorm statistics randomized with ``seed``."""
    from mobilebone import create_model, reparameterize_model

    if form == "built":
        model = create_model(name, deploy=True)
    else:
        model = randomize_batchnorm(create_model(name), seed=seed)
        if form == "fused":
            model = reparameterize_model(model)
    return model.eval()
