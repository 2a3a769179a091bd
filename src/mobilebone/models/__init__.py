"""Model assemblies. Importing this package registers every model family."""

from mobilebone.models import (
    mobilenetv4,  # noqa: F401  (registers mobilenetv4_*)
    mobileone,  # noqa: F401  (registers mobileone_s0..s4)
)
from mobilebone.models.contract import Backbone, FeatureExtractor, FeatureInfo

__all__ = ["Backbone", "FeatureExtractor", "FeatureInfo"]
