"""Training: the papers' recipes, the embedded shapes set, a resumable loop that also runs under torchrun.

``resolve_config(model, data, **overrides)`` builds a ``TrainConfig`` from a recipe; ``train(cfg)`` runs it
and returns a ``TrainResult``; ``evaluate(models, loader)`` reports top-1 / top-5. Other tasks plug into the
same loop through ``training.task.Task`` (``train(cfg, task=...)``). Names load on first use, so that
``training.config`` (which the command line reads for its flags) imports without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RECIPES": "mobilebone.training.config",
    "TrainConfig": "mobilebone.training.config",
    "resolve_config": "mobilebone.training.config",
    "EvalResult": "mobilebone.training.evaluate",
    "evaluate": "mobilebone.training.evaluate",
    "TrainResult": "mobilebone.training.loop",
    "train": "mobilebone.training.loop",
    "Task": "mobilebone.training.task",
    "TaskData": "mobilebone.training.task",
    "ClassificationTask": "mobilebone.training.classification",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mobilebone.training' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
