"""``create_model``: build a registered model by name, optionally with its pretrained weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from torch import nn

from mobilebone.checkpoints.hub import HUB_PREFIX
from mobilebone.models.contract import Backbone, FeatureExtractor
from mobilebone.registry import ModelEntry, PretrainedTag, get_entry, list_models, pretrained_cfg

__all__ = ["create_model", "list_models"]

DEFAULT_NUM_CLASSES = 1000


def create_model(
    name: str,
    *,
    pretrained: bool | str = False,
    num_classes: int | None = None,
    in_chans: int = 3,
    deploy: bool = False,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    feature_cls: str | None = None,
    global_pool: str | None = None,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model by name (``arch``, or ``arch.tag`` with a known weight tag).

    ``deploy=True`` builds the reparameterized deploy graph, ``features_only=True`` returns the
    feature maps of ``out_indices`` instead of logits. ``pretrained`` is ``True`` (the default weights of
    ``name``), a weight tag, or a local checkpoint path. ``num_classes`` defaults, as in timm, to the class
    count of the named tag (``arch.tag``, or the default tag with ``pretrained=True``), else 1000; a
    different explicit count keeps a freshly initialised classifier. An unknown model or tag raises a
    ``ValueError`` listing the close matches or the architecture's known tags. ``features_only`` takes timm's
    ``feature_cls="getter"``; ``global_pool=""`` with ``num_classes=0`` returns unpooled feature maps.
    ``"hf-hub:owner/name"`` builds the model a Hugging Face Hub repository describes and loads its weights.
    """
    if "inference_mode" in kwargs:  # Apple's and earlier mobilebone's name for ``deploy``
        import warnings

        warnings.warn("inference_mode= is now deploy=", FutureWarning, stacklevel=2)
        deploy = bool(kwargs.pop("inference_mode"))
    if name.startswith(HUB_PREFIX):
        from mobilebone.checkpoints.hub import fetch_hub_repo

        repo = fetch_hub_repo(name)
        model = create_model(
            repo.architecture,
            pretrained=str(repo.weights),
            num_classes=repo.num_classes if num_classes is None else num_classes,
            in_chans=in_chans,
            deploy=deploy,
            global_pool=global_pool,
            drop_path_rate=drop_path_rate,
            **kwargs,
        )
        cast(Backbone, model).pretrained_cfg.update(repo.pretrained_cfg)
        return FeatureExtractor(cast(Backbone, model), out_indices, feature_cls) if features_only else model
    if global_pool is not None:
        kwargs["global_pool"] = global_pool
    entry = get_entry(name)
    _, dot, tag_name = name.partition(".")
    tag = entry.weight_tag(tag_name) if dot else None
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}")
    if num_classes is None:
        source = tag or _pretrained_tag(entry, pretrained)
        num_classes = source.num_classes if source is not None else DEFAULT_NUM_CLASSES
    model = cast(
        Backbone,
        entry.build(
            num_classes=num_classes,
            in_chans=in_chans,
            deploy=deploy,
            drop_path_rate=drop_path_rate,
            **kwargs,
        ),
    )
    # As in timm, ``arch.tag`` carries the tag's preprocessing even without its weights.
    model.pretrained_cfg = pretrained_cfg(name)
    model.pretrained_cfg["num_classes"] = num_classes
    if pretrained:
        from mobilebone.checkpoints.hub import load_pretrained

        load_pretrained(model, name, pretrained)
    if features_only:
        return FeatureExtractor(model, out_indices, feature_cls)
    return model


def _pretrained_tag(entry: ModelEntry, pretrained: bool | str) -> PretrainedTag | None:
    """The weight tag ``pretrained`` asks for (``True``: the default tag), ``None`` for a file or nothing."""
    if pretrained is True:
        return entry.tags[0] if entry.tags else None
    if isinstance(pretrained, str):
        return next((t for t in entry.tags if pretrained in (t.tag, t.name)), None)
    return None
