"""Exponential moving average of the weights (MobileOne trains with EMA 0.9995: MobileOne paper, arXiv 2206.04040, §4).

``torch.optim.swa_utils.AveragedModel`` does the bookkeeping; the averaging function adds timm's warm-up
(``decay_t = min(decay, (1 + t) / (10 + t))``) so that short runs are not dominated by the random init.
BatchNorm statistics are averaged too (``use_buffers=True``), as timm's ModelEma does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel


def ema_multi_avg_fn(decay: float) -> Callable[[Any, Any, Any], None]:
    """A ``multi_avg_fn`` for ``AveragedModel``: lerp towards the current weights by ``1 - decay_t``."""

    @torch.no_grad()
    def update(averaged: Any, current: Any, num_averaged: Tensor | int) -> None:
        t = float(num_averaged)
        weight = 1.0 - min(decay, (1.0 + t) / (10.0 + t))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, weight)
        else:  # integer buffers (BatchNorm's num_batches_tracked): follow the model
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)

    return update


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of ``model`` (weights and buffers), updated with ``ema.update_parameters(model)``."""
    ema = AveragedModel(model, multi_avg_fn=ema_multi_avg_fn(decay), use_buffers=True)
    ema.requires_grad_(False)
    return ema
