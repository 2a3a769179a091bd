"""Detection and segmentation on mobilebone backbones, built from torchvision's task components."""

from mobilebone.tasks.checkpoint import load_task_model, save_task_model
from mobilebone.tasks.factory import create_detector, create_segmenter
from mobilebone.tasks.raw import raw_outputs
from mobilebone.tasks.registry import list_task_models
from mobilebone.tasks.reparam import reparameterize_task_model

__all__ = [
    "create_detector",
    "create_segmenter",
    "list_task_models",
    "load_task_model",
    "raw_outputs",
    "reparameterize_task_model",
    "save_task_model",
]
