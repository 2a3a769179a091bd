"""Model assemblies. Importing this package declares every model family in the registry (without torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mobilebone.models import mobileone_cfgs  # noqa: F401  (declares mobileone_s0..s4)
from mobilebone.models.mobilenetv4 import cfgs  # noqa: F401  (declares mobilenetv4_*)

if TYPE_CHECKING:
    from mobilebone.models.contract import Backbone, FeatureExtractor, FeatureInfo

__all__ = ["Backbone", "FeatureExtractor", "FeatureInfo"]


def __getattr__(name: str) -> Any:
    # The model contract needs torch; listing and describing models must not import it.
    if name in __all__:
        from mobilebone.models import contract

        return getattr(contract, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
