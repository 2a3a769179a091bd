"""The model a checkpoint needs: architecture, class count, input channels and form read from the weights.

Every command that takes ``--weights`` (convert, export, predict, eval) builds its model here, so a
fused file, a 10-class fine-tune or a 1-channel model loads the same way everywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from mobilebone.checkpoints.errors import CheckpointError
from mobilebone.checkpoints.load import Checkpoint, load_into
from mobilebone.registry import get_entry, pretrained_cfg


def checkpoint_model_name(ckpt: Checkpoint, model_name: str | None = None) -> str:
    """``model_name`` if given, else the name the checkpoint records (native metadata or its weight tag)."""
    name = model_name or ckpt.model_name or (ckpt.tag.name if ckpt.tag is not None else None)
    if not name:
        raise CheckpointError(
            f"{ckpt.origin} does not say which model it holds; pass the architecture "
            f"(--model NAME, see `mobilebone list`)"
        )
    return str(name)


def model_for_checkpoint(
    ckpt: Checkpoint, model_name: str | None = None, *, deploy: bool | None = None
) -> tuple[nn.Module, str]:
    """Build the model ``ckpt`` needs, load it strictly, and return it (eval mode) with its name.

    The architecture is ``model_name`` (``arch`` or ``arch.tag``) or the one the checkpoint records;
    ``num_classes`` and ``in_chans`` come from the weights. ``deploy=None`` builds the weights'
    own form (fused weights need the deploy graph); ``True`` builds the deploy graph and fuses train-time
    weights on loading; weights holding NaN/inf are refused. ``pretrained_cfg`` becomes the weights' preprocessing: the model's default,
    updated by the tag in the name, updated by what the checkpoint itself records.
    """
    name = checkpoint_model_name(ckpt, model_name)
    ckpt.check_finite()
    fused = ckpt.layout.fused if deploy is None else deploy
    model = get_entry(name).build(num_classes=ckpt.num_classes, in_chans=ckpt.in_chans or 3, deploy=fused)
    cfg = {**pretrained_cfg(name), **ckpt.cfg(), "num_classes": ckpt.num_classes}
    model.pretrained_cfg = cfg  # type: ignore[assignment]  # names the architecture for load_into
    with torch.no_grad():
        load_into(model, ckpt, strict=True)
    return model.eval(), name
