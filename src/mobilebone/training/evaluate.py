"""Top-1 / top-5 evaluation, sharded over ranks, of one or several models in a single pass over the data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mobilebone.training.distributed import DistInfo, all_reduce_sum


@dataclass
class EvalResult:
    """Accuracies in percent, mean cross-entropy, image count; ``max_logit_diff`` vs the first model."""

    top1: float
    top5: float
    loss: float
    count: int
    max_logit_diff: float = 0.0


@torch.no_grad()
def evaluate(
    models: nn.Module | Sequence[nn.Module],
    loader: Any,
    *,
    info: DistInfo | None = None,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> list[EvalResult]:
    """Evaluate every model on the same batches (results summed over ranks); returns one result per model."""
    info = info or DistInfo()
    group = [models] if isinstance(models, nn.Module) else list(models)
    modes = [m.training for m in group]
    for m in group:
        m.eval()
    # Per model: correct@1, correct@5, summed loss; then count and the max |logit difference| to model 0.
    sums = torch.zeros(len(group), 3, dtype=torch.float64)
    count, max_diff = 0, torch.zeros(len(group), dtype=torch.float64)
    for images, labels in loader:
        images = images.to(info.device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(info.device, non_blocking=True)
        reference = None
        for i, model in enumerate(group):
            with torch.autocast(
                info.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
            ):
                logits = model(images).float()
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices  # (B, k)
            hits = top.eq(labels[:, None])
            sums[i, 0] += hits[:, 0].sum().item()
            sums[i, 1] += hits.any(dim=1).sum().item()
            sums[i, 2] += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            if reference is None:
                reference = logits
            else:
                max_diff[i] = max(float(max_diff[i]), float((logits - reference).abs().max()))
        count += labels.numel()
    for m, mode in zip(group, modes, strict=True):
        m.train(mode)
    totals = all_reduce_sum(
        torch.cat([sums.flatten(), torch.tensor([float(count)], dtype=torch.float64)]).to(info.device), info
    ).cpu()
    if info.distributed:  # the max over ranks: gather via all_reduce of a one-hot layout is overkill; use MAX
        import torch.distributed as dist

        diff = max_diff.to(info.device)
        dist.all_reduce(diff, op=dist.ReduceOp.MAX)
        max_diff = diff.cpu()
    n = max(1.0, float(totals[-1]))
    sums = totals[:-1].view(len(group), 3)
    return [
        EvalResult(
            top1=100.0 * float(s[0]) / n,
            top5=100.0 * float(s[1]) / n,
            loss=float(s[2]) / n,
            count=int(totals[-1]),
            max_logit_diff=float(d),
        )
        for s, d in zip(sums, max_diff, strict=True)
    ]
