"""The model-level walker: one call folds every reparameterizable module of a model."""

from __future__ import annotations

import copy
from typing import TypeVar

from torch import nn

M = TypeVar("M", bound=nn.Module)


def _walk(module: nn.Module) -> None:
    # Pre-order: a block fuses its own branches first, then its (new) children are visited, so a block
    # that folds its sub-units itself and one that leaves them to the walker both work.
    fuse = getattr(module, "reparameterize", None)
    if callable(fuse):
        fuse()
    for child in module.children():
        _walk(child)


def reparameterize_model(model: M, inplace: bool = False) -> M:
    """Fold every train-time branch and BatchNorm into single convs; return the model in eval mode.

    Calls ``reparameterize()`` on every module that has it (the one method name blocks use). Running
    statistics are used, so the model is switched to eval first. Idempotent: a deploy-form model is unchanged.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    _walk(model)
    return model
