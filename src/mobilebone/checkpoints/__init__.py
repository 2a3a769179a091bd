"""Checkpoints: safe reading, format detection (timm, Apple, native), strict loading, weight tags, Hub.

``load_checkpoint(model, source)`` loads a file, a state dict or a weight tag; ``model_for_checkpoint``
builds the model a checkpoint needs and loads it; ``save_native`` writes mobilebone's self-describing
safetensors format; ``read_metadata`` reads it back. The names are imported on first use, so the
torch-free ``checkpoints.tags`` can be imported on its own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mobilebone.checkpoints.build import model_for_checkpoint
    from mobilebone.checkpoints.errors import CheckpointError
    from mobilebone.checkpoints.load import load_checkpoint
    from mobilebone.checkpoints.native import read_metadata, save_native
    from mobilebone.checkpoints.tags import PretrainedTag, get_tag, list_pretrained

_LAZY = {
    "CheckpointError": "errors",
    "PretrainedTag": "tags",
    "get_tag": "tags",
    "list_pretrained": "tags",
    "load_checkpoint": "load",
    "model_for_checkpoint": "build",
    "read_metadata": "native",
    "save_native": "native",
}
__all__ = [
    "CheckpointError",
    "PretrainedTag",
    "get_tag",
    "list_pretrained",
    "load_checkpoint",
    "model_for_checkpoint",
    "read_metadata",
    "save_native",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
