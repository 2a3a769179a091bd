"""mobilebone: mobile vision backbones that are fast in practice (MobileOne, MobileNetV4)."""

from mobilebone.checkpoints import load_checkpoint
from mobilebone.factory import create_model, list_models
from mobilebone.hub_publish import push_to_hub
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
