"""One optimization step, the same for every task: loss → backward → clip → step → schedules → EMA.

A NaN or infinite loss is recorded on the device without waiting for it (no sync per step); ``finite()``
reads the record (and, under DDP, agrees on it across ranks) before anything is saved, so weights that
went non-finite are never written and the last good checkpoint stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mobilebone.training.config import TrainConfig
from mobilebone.training.distributed import DistInfo, all_reduce_sum
from mobilebone.training.errors import NonFiniteLossError
from mobilebone.training.optim import set_weight_decay
from mobilebone.training.task import Task


@dataclass
class TrainStep:
    """Everything a step updates; ``global_step`` counts optimizer steps since the run began."""

    task: Task
    cfg: TrainConfig
    info: DistInfo
    model: nn.Module  # the unwrapped model (EMA, clipping, state dicts)
    net: nn.Module  # what runs the forward: the model, or its DDP wrapper
    ema: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    total_steps: int
    global_step: int = 0
    weight_decay: float = 0.0
    bad_step: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.float64))

    def __call__(self, batch: Any) -> tuple[torch.Tensor, int]:
        """Train on one batch; returns the (detached) loss and the number of samples."""
        device = self.info.device
        self.weight_decay = set_weight_decay(
            self.optimizer, self.cfg, self.global_step / max(1, self.total_steps)
        )
        with torch.autocast(
            device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            loss, n = self.task.loss(self.net, batch, device)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        loss = loss.detach()
        # Remember the step of the first non-finite loss (1-based; 0 = none) without a device sync.
        first = torch.full((), float(self.global_step + 1), dtype=torch.float64, device=loss.device)
        self.bad_step = torch.where(
            (self.bad_step.to(loss.device) == 0) & ~torch.isfinite(loss), first, self.bad_step.to(loss.device)
        )
        self.global_step += 1
        return loss, n

    def finite(self, *, collective: bool = True) -> bool:
        """Whether every loss so far was finite (all ranks agree when ``collective``; a device sync)."""
        flag = self.bad_step.detach().clone()
        if collective and self.info.distributed:
            flag = all_reduce_sum(flag.to(self.info.device), self.info)
        return float(flag) == 0

    def stop(self, last_checkpoint: str) -> NonFiniteLossError:
        """The error that ends a run whose loss became non-finite."""
        return NonFiniteLossError(
            f"the training loss became non-finite (NaN or inf) at step {int(self.bad_step.max())} "
            f"(lr {self.optimizer.param_groups[0]['lr']:.3g}); stopped without saving. {last_checkpoint} "
            f"Lower --lr / --lr-base or set --grad-clip and start a new run (a resume repeats the same steps)."
        )
