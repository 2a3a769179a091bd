"""Reparameterize a whole task model: fuse the backbone, then fold BatchNorm into the heads' convs."""

from __future__ import annotations

import copy
import itertools
from typing import TypeVar

import torch
from torch import nn

from mobilebone.reparam import fuse_conv_bn, reparameterize_model

M = TypeVar("M", bound=nn.Module)


def _fold_sequential(seq: nn.Sequential) -> int:
    """Fold every ``Conv2d → BatchNorm2d`` pair of ``seq`` in place; return how many were folded."""
    folded = 0
    names = list(seq._modules)
    for first, second in itertools.pairwise(names):
        conv, bn = seq._modules[first], seq._modules[second]
        if not (isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d):
            continue
        weight, bias = fuse_conv_bn(conv.weight, conv.bias, bn)
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            stride=conv.stride,  # type: ignore[arg-type]
            padding=conv.padding,  # type: ignore[arg-type]
            dilation=conv.dilation,  # type: ignore[arg-type]
            groups=conv.groups,
            bias=True,
            padding_mode=conv.padding_mode,
        ).to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            fused.weight.copy_(weight)
            fused.bias.copy_(bias)  # type: ignore[union-attr]
        seq._modules[first] = fused
        seq._modules[second] = nn.Identity()
        folded += 1
    return folded


def reparameterize_task_model(model: M, inplace: bool = False) -> M:
    """Fuse the backbone (``mobilebone.reparameterize_model``) and fold each head BatchNorm into its conv.

    A BatchNorm folds when it directly follows a ``Conv2d`` in the same ``nn.Sequential`` (torchvision's
    ``Conv2dNormActivation``, ASPP branches, SSDLite blocks, LR-ASPP's ``cbr``). Returns the model in eval mode.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model = reparameterize_model(model, inplace=True)
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            _fold_sequential(module)
    model.deploy_form = True  # type: ignore[assignment]  # save_task_model records the form
    return model
