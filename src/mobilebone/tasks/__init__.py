"""Detection and segmentation on mobilebone backbones, built from torchvision's task components.

The public functions are imported on first use, so listing task models (``mobilebone list --task``) needs
no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mobilebone.tasks.checkpoint import load_task_model, save_task_model
    from mobilebone.tasks.factory import create_detector, create_segmenter
    from mobilebone.tasks.raw import raw_outputs
    from mobilebone.tasks.registry import list_task_models
    from mobilebone.tasks.reparam import reparameterize_task_model

_LAZY = {
    "create_detector": "mobilebone.tasks.factory",
    "create_segmenter": "mobilebone.tasks.factory",
    "list_task_models": "mobilebone.tasks.registry",
    "load_task_model": "mobilebone.tasks.checkpoint",
    "raw_outputs": "mobilebone.tasks.raw",
    "reparameterize_task_model": "mobilebone.tasks.reparam",
    "save_task_model": "mobilebone.tasks.checkpoint",
}

__all__ = [
    "create_detector",
    "create_segmenter",
    "list_task_models",
    "load_task_model",
    "raw_outputs",
    "reparameterize_task_model",
    "save_task_model",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mobilebone.tasks' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
