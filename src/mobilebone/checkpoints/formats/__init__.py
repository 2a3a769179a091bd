"""Key-layout converters: every supported checkpoint layout → mobilebone's own state-dict keys."""

from mobilebone.checkpoints.formats import apple, timm

__all__ = ["apple", "timm"]
