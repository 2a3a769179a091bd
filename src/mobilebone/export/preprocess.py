"""Baking image normalization into a model for runtimes whose image input has a scalar scale.

Core ML's ``ImageType`` computes ``y = scale · pixel + bias[c]``: the bias is per channel but the scale is
one scalar, so ``(pixel/255 − mean[c]) / std[c]`` with unequal ``std`` cannot be expressed by it alone.
We let the image input compute ``pixel/255 − mean[c]`` and divide by ``std[c]`` inside the model: folded
into the input channels of the first conv when that is exact, otherwise as an explicit scale layer.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def random_pixels(shape: tuple[int, ...], seed: int = 0) -> Tensor:
    """Reproducible random 8-bit pixel values (``uint8``) of ``shape``, e.g. ``(N, 3, H, W)``."""
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed)).to(torch.uint8)


def normalize_pixels(pixels: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(pixel/255 − mean[c]) / std[c]`` of an ``(N, C, H, W)`` batch of 0–255 values (in its float dtype)."""
    values = pixels if pixels.is_floating_point() else pixels.float()
    mean_t = torch.tensor(list(mean), dtype=values.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(list(std), dtype=values.dtype).view(1, -1, 1, 1)
    return (values / 255 - mean_t) / std_t


class ChannelScale(nn.Module):
    """``x · factor[c]``: the explicit per-channel normalization layer (used when folding is impossible)."""

    factor: Tensor

    def __init__(self, factor: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("factor", torch.tensor(list(factor), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Scale each channel of an ``(N, C, H, W)`` tensor by its factor."""
        return x * self.factor


def first_conv_on_input(model: nn.Module, x: Tensor) -> tuple[str, nn.Conv2d] | None:
    """The conv that consumes the model input directly, if the first op of the model is such a conv."""
    named = {id(m): (n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    found: list[tuple[str, nn.Conv2d]] = []
    seen_first = False

    def hook(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        """Record the first conv to run, if it reads the model input itself."""
        nonlocal seen_first
        if not seen_first:
            seen_first = True
            if inputs and inputs[0] is x:
                found.append(named[id(module)])

    handles = [m.register_forward_pre_hook(hook) for _, m in named.values()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None


def fold_normalization(
    deploy: nn.Module, mean: Sequence[float], std: Sequence[float], x: Tensor
) -> tuple[nn.Module, float, list[float], str]:
    """Return ``(model, scale, bias, description)`` such that ``model(scale·pixel + bias)`` equals
    ``deploy((pixel/255 − mean)/std)``.

    Uniform ``std``: everything fits in scale and bias. Otherwise ``1/std[c]`` multiplies the input
    channel ``c`` of the first conv's weights — exact, because zero padding stays zero under a per-channel
    scale (an offset would not be, which is why the mean stays in the image bias) — or, if the model does
    not start with a plain conv on its input, becomes a ``ChannelScale`` layer in front.
    """
    if all(abs(s - std[0]) <= 1e-12 * abs(std[0]) for s in std):
        scale = 1.0 / (255.0 * std[0])
        bias = [-m / std[0] for m in mean]
        return deploy, scale, bias, f"image input: scale 1/(255·{std[0]:g}), bias −mean/std"
    scale, bias = 1.0 / 255.0, [-float(m) for m in mean]
    folded = copy.deepcopy(deploy)
    target = first_conv_on_input(folded, x)
    if target is not None and target[1].groups == 1 and target[1].padding_mode == "zeros":
        name, conv = target
        with torch.no_grad():
            conv.weight.mul_(1.0 / torch.tensor(list(std), dtype=conv.weight.dtype).view(1, -1, 1, 1))
        return (
            folded,
            scale,
            bias,
            f"image input: scale 1/255, bias −mean; 1/std folded into the first conv ({name})",
        )
    wrapped = nn.Sequential(ChannelScale([1.0 / s for s in std]), deploy)
    return wrapped, scale, bias, "image input: scale 1/255, bias −mean; explicit per-channel 1/std layer"
