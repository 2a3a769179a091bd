"""Classification head: global pool → flatten → (dropout) → linear; ``global_pool=""`` keeps the map."""

from __future__ import annotations

from torch import Tensor, nn

GLOBAL_POOLS = ("avg", "max", "")  # timm's names; "" = no pooling (unpooled feature maps)


def make_global_pool(pool_type: str, flatten: bool = True) -> nn.Module:
    """``avg``/``max`` pool to an (N, C) vector (N, C, 1, 1 without ``flatten``); ``""`` passes the map."""
    if pool_type not in GLOBAL_POOLS:
        raise ValueError(f"global_pool must be one of {GLOBAL_POOLS}, got {pool_type!r}")
    if not pool_type:
        return nn.Identity()
    pool = nn.AdaptiveAvgPool2d(1) if pool_type == "avg" else nn.AdaptiveMaxPool2d(1)
    return nn.Sequential(pool, nn.Flatten(1)) if flatten else pool


def check_pool_classes(num_classes: int, global_pool: str) -> None:
    """A classifier needs pooled vectors: ``global_pool=""`` is only valid with ``num_classes=0``."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}")
    if not global_pool and num_classes > 0:
        raise ValueError(
            f"global_pool='' (unpooled feature maps) needs num_classes=0, got num_classes={num_classes}"
        )


class ClassifierHead(nn.Module):
    """Pool a feature map to a vector and map it to ``num_classes`` logits (Identity when 0 classes)."""

    def __init__(
        self, in_features: int, num_classes: int, drop_rate: float = 0.0, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.pool_type = global_pool
        self.global_pool = make_global_pool(global_pool)
        self.drop = nn.Dropout(drop_rate)
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes, global_pool)

    def reset(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the linear layer with a fresh one for ``num_classes`` outputs (and the pooling if given)."""
        pool = self.pool_type if global_pool is None else global_pool
        check_pool_classes(num_classes, pool)
        if pool != self.pool_type:
            self.global_pool = make_global_pool(pool)
            self.pool_type = pool
        self.num_classes = num_classes
        self.fc = nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(self.global_pool(x))
        return x if pre_logits else self.fc(x)
