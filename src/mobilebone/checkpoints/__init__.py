"""Checkpoints: safe reading, format detection (timm, Apple, native), strict loading, weight tags, Hub.

``load_checkpoint(model, source)`` loads a file, a state dict or a weight tag; ``model_for_checkpoint``
builds the model a checkpoint needs and loads it; ``save_native`` writes mobilebone's self-describing
safetensors format; ``read_metadata`` reads it back.
"""

from mobilebone.checkpoints.build import model_for_checkpoint
from mobilebone.checkpoints.errors import CheckpointError
from mobilebone.checkpoints.load import load_checkpoint
from mobilebone.checkpoints.native import read_metadata, save_native
from mobilebone.checkpoints.tags import PretrainedTag, get_tag, list_pretrained

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
