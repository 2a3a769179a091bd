"""Optimizer, learning-rate schedule and weight-decay schedule.

Norm parameters and biases get no weight decay (standard in timm and torchvision reference recipes):
decaying BatchNorm scales only fights the following layer's rescaling. The learning rate warms up
linearly and then follows a cosine; MobileOne also anneals the weight decay 1e-4 → 1e-5 with a cosine.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mobilebone.training.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Two groups: conv/linear weights with ``weight_decay``; norms and biases (all 1-D tensors) without."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay, "apply_decay": True},
        {"params": no_decay, "weight_decay": 0.0, "apply_decay": False},
    ]


def build_optimizer(model: nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW (decoupled weight decay) over ``param_groups``."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum)  # type: ignore[arg-type]
    return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas)  # type: ignore[arg-type]


def cosine(progress: float, start: float, end: float) -> float:
    """Cosine interpolation from ``start`` (progress 0) to ``end`` (progress 1)."""
    progress = min(max(progress, 0.0), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, min_factor: float) -> float:
    """Multiplier of the peak lr at ``step``: linear warm-up, then cosine down to ``min_factor``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return cosine((step - warmup_steps) / max(1, total_steps - warmup_steps), 1.0, min_factor)


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, lr: float, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` implementing ``lr_factor`` (its state is plain numbers: resumable)."""
    total = cfg.epochs * steps_per_epoch
    warmup = min(total, round(cfg.warmup_epochs * steps_per_epoch))
    min_factor = cfg.min_lr / lr if lr > 0 else 0.0
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(step, warmup_steps=warmup, total_steps=total, min_factor=min_factor),
    )


def set_weight_decay(optimizer: torch.optim.Optimizer, cfg: TrainConfig, progress: float) -> float:
    """Set the decayed groups' weight decay for training ``progress`` in [0, 1]; returns the value."""
    end = cfg.weight_decay if cfg.weight_decay_end is None else cfg.weight_decay_end
    value = cosine(progress, cfg.weight_decay, end)
    for group in optimizer.param_groups:
        if group.get("apply_decay", True):
            group["weight_decay"] = value
    return value
