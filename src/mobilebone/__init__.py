"""mobilebone: mobile vision backbones that are fast in practice (MobileOne, MobileNetV4).

The public functions are imported on first use, so ``import mobilebone`` (and the command line's
start-up) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mobilebone.checkpoints import load_checkpoint
    from mobilebone.factory import create_model
    from mobilebone.hub_publish import push_to_hub
    from mobilebone.registry import list_models
    from mobilebone.reparam import reparameterize_model

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "load_checkpoint",
    "push_to_hub",
    "reparameterize_model",
]

_LAZY = {
    "create_model": "mobilebone.factory",
    "list_models": "mobilebone.registry",
    "load_checkpoint": "mobilebone.checkpoints",
    "push_to_hub": "mobilebone.hub_publish",
    "reparameterize_model": "mobilebone.reparam",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mobilebone' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
