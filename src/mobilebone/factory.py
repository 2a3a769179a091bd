"""``create_model`` and ``list_models``: the public entry points to the registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from torch import nn

import mobilebone.models  # noqa: F401  (registers the model families)
from mobilebone.models.contract import Backbone, FeatureExtractor
from mobilebone.registry import get_entry, list_architectures


def create_model(
    name: str,
    *,
    pretrained: bool | str = False,
    num_classes: int = 1000,
    in_chans: int = 3,
    inference_mode: bool = False,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    feature_cls: str | None = None,
    global_pool: str | None = None,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model by name (``arch``, or ``arch.tag`` with a known weight tag).

    ``inference_mode=True`` builds the reparameterized deploy graph, ``features_only=True`` returns the
    feature maps of ``out_indices`` instead of logits. ``pretrained`` is ``True`` (the default weights of
    ``name``), a weight tag, or a local checkpoint path. An unknown model or tag raises a ``ValueError``
    listing the close matches or the architecture's known tags. ``features_only`` takes timm's
    ``feature_cls="getter"``; ``global_pool=""`` with ``num_classes=0`` returns unpooled feature maps.
    ``"hf-hub:owner/name"`` builds the model a Hugging Face Hub repository describes and loads its weights.
    """
    if name.startswith("hf-hub:"):
        from mobilebone.hub_publish import create_from_hub

        return create_from_hub(
            name,
            features_only=features_only,
            out_indices=out_indices,
            feature_cls=feature_cls,
            inference_mode=inference_mode,
            **kwargs,
        )
    if global_pool is not None:
        kwargs["global_pool"] = global_pool
    entry = get_entry(name)
    tag_cfg = _weight_tag_cfg(name)
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}")
    model = cast(
        Backbone,
        entry.builder(
            num_classes=num_classes,
            in_chans=in_chans,
            inference_mode=inference_mode,
            drop_path_rate=drop_path_rate,
            **kwargs,
        ),
    )
    # As in timm, ``arch.tag`` carries the tag's preprocessing even without its weights.
    model.pretrained_cfg = {**entry.default_cfg, "architecture": entry.name, **tag_cfg}
    model.pretrained_cfg["num_classes"] = num_classes
    if pretrained:
        from mobilebone.checkpoints.hub import load_pretrained

        load_pretrained(model, name, pretrained)
    if features_only:
        return FeatureExtractor(model, out_indices, feature_cls)
    return model


def _weight_tag_cfg(name: str) -> dict[str, Any]:
    """The ``pretrained_cfg`` of ``arch.tag`` (``{}`` for a bare name); an unknown tag is a ``ValueError``."""
    arch, dot, tag = name.partition(".")
    if not dot:
        return {}
    # Weight tags are checkpoint metadata (checkpoints/ sits above models/ and the registry), hence the
    # import here rather than at module level; tags.py itself imports only the registry.
    from mobilebone.checkpoints.tags import is_tag, list_pretrained, tag_cfg

    if not is_tag(name):
        known = [t.partition(".")[2] for t in list_pretrained(arch)]
        hint = f"known tags: {', '.join(known)}" if known else "it has no pretrained weights"
        raise ValueError(f"unknown weight tag {tag!r} for {arch}; {hint} (or pass the bare name {arch!r})")
    return tag_cfg(name)


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Names of registered models matching ``pattern``; with ``pretrained``, the ``arch.tag`` weight names."""
    if pretrained:
        from mobilebone.checkpoints.tags import list_pretrained

        return list_pretrained(pattern)
    return list_architectures(pattern)
