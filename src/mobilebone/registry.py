"""Model registry: names → metadata (family, kind, recipe, checkpoint converters, weight tags) and builders.

Importing this module, listing names and reading any metadata never imports torch: each family declares
its entries in a small torch-free module next to the model (``models/*_cfgs.py``, as timm's
``generate_default_cfgs`` tables sit next to its models), and the builder is named as
``"module:function"``, imported only when a model is built.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
HUB_FILENAME = "model.safetensors"

Kind = Literal["convnet", "hybrid", "transformer"]
KINDS: tuple[str, ...] = ("convnet", "hybrid", "transformer")


@dataclass(frozen=True)
class PretrainedTag:
    """One set of published weights (``arch.tag``): where it lives and how its inputs are preprocessed."""

    arch: str
    tag: str
    input_size: int
    crop_pct: float
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_classes: int = 1000
    test_input_size: int | None = None  # a larger size timm also evaluates at (with test_crop_pct)
    test_crop_pct: float | None = None
    license: str = "apache-2.0"
    paper_ids: str = ""
    top1: float | None = None  # published ImageNet-1k top-1 (%) at input_size, where known

    @property
    def name(self) -> str:
        """``arch.tag``."""
        return f"{self.arch}.{self.tag}"

    @property
    def hf_hub_id(self) -> str:
        """The Hugging Face Hub repository holding the weights."""
        return f"timm/{self.name}"

    def cfg(self) -> dict[str, Any]:
        """The ``pretrained_cfg`` a model gets when loaded with these weights (timm's keys)."""
        cfg: dict[str, Any] = {
            "architecture": self.arch,
            "tag": self.tag,
            "input_size": (3, self.input_size, self.input_size),
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
            "mean": self.mean,
            "std": self.std,
            "num_classes": self.num_classes,
            "hf_hub_id": self.hf_hub_id,
            "hf_hub_filename": HUB_FILENAME,
            "license": self.license,
            "paper_ids": self.paper_ids,
        }
        if self.test_input_size is not None:
            cfg["test_input_size"] = (3, self.test_input_size, self.test_input_size)
            cfg["test_crop_pct"] = self.test_crop_pct
        if self.top1 is not None:
            cfg["top1"] = self.top1
        return cfg


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture and everything known about it without building it."""

    name: str
    family: str  # "mobileone", "mobilenetv4": which checkpoint layouts and fusion rules apply
    kind: Kind  # convnet / hybrid (convolutions + attention) / transformer
    recipe: str  # key of the default training recipe (``mobilebone.training.config.RECIPES``)
    builder: str  # "module:function", called as function(variant, **kwargs) on build
    variant: str
    # Foreign checkpoint layouts that load into this model: layout name → "module:function" renaming
    # their keys to ours (the native "mobilebone" layout needs none).
    converters: Mapping[str, str] = field(default_factory=dict)
    default_cfg: dict[str, Any] = field(default_factory=dict)
    tags: tuple[PretrainedTag, ...] = ()  # the first is the default (``pretrained=True``)

    def weight_tag(self, tag: str) -> PretrainedTag:
        """The declared tag ``tag`` (without the ``arch.`` prefix); an unknown one raises listing the known."""
        for declared in self.tags:
            if declared.tag == tag:
                return declared
        known = sorted(t.tag for t in self.tags)
        hint = f"known tags: {', '.join(known)}" if known else "it has no pretrained weights"
        raise ValueError(
            f"unknown weight tag {tag!r} for {self.name}; {hint} (or pass the bare name {self.name!r})"
        )

    def build(self, **kwargs: Any) -> nn.Module:
        """Import the builder and build the model (torch is imported here, not at registration)."""
        builder: Callable[..., nn.Module] = resolve(self.builder)
        return builder(self.variant, **kwargs)


def resolve(target: str) -> Any:
    """The object named by ``"package.module:attribute"``."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


_MODELS: dict[str, ModelEntry] = {}


def default_cfg(
    input_size: int = 224,
    crop_pct: float = 0.875,
    interpolation: str = "bilinear",
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    **extra: Any,
) -> dict[str, Any]:
    """Build an eval-preprocessing config dict (timm's ``pretrained_cfg`` keys)."""
    return {
        "input_size": (3, input_size, input_size),
        "crop_pct": crop_pct,
        "interpolation": interpolation,
        "mean": mean,
        "std": std,
        **extra,
    }


def register(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry; a duplicate name, an unknown kind or a foreign tag raises."""
    if entry.name in _MODELS:
        raise ValueError(f"model {entry.name!r} is already registered")
    if entry.kind not in KINDS:
        raise ValueError(f"model {entry.name!r}: kind must be one of {', '.join(KINDS)}, got {entry.kind!r}")
    for tag in entry.tags:
        if tag.arch != entry.name:
            raise ValueError(f"weight tag {tag.name} declared on {entry.name}")
    _MODELS[entry.name] = entry
    return entry


def _registered() -> dict[str, ModelEntry]:
    # The model package declares every family on import (torch-free modules only).
    import mobilebone.models  # noqa: F401

    return _MODELS


def get_entry(name: str) -> ModelEntry:
    """Look up ``arch`` or ``arch.tag``; an unknown name raises ``ValueError`` listing close matches."""
    models = _registered()
    arch = name.split(".", 1)[0]
    if arch in models:
        return models[arch]
    close = difflib.get_close_matches(arch, list(models), n=5, cutoff=0.5)
    hint = f"; did you mean: {', '.join(close)}?" if close else "; run `mobilebone list` to see all models"
    raise ValueError(f"unknown model {name!r}{hint}")


def pretrained_cfg(name: str) -> dict[str, Any]:
    """The ``pretrained_cfg`` of ``arch`` (its default) or ``arch.tag`` (the tag's preprocessing, as timm)."""
    entry = get_entry(name)
    _, dot, tag = name.partition(".")
    tag_cfg = entry.weight_tag(tag).cfg() if dot else {}
    return {**entry.default_cfg, "architecture": entry.name, **tag_cfg}


def entries() -> list[ModelEntry]:
    """Every registered entry, sorted by name."""
    return [entry for _, entry in sorted(_registered().items())]


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Names of registered models matching ``pattern``; with ``pretrained``, the ``arch.tag`` weight names.

    With ``pretrained``, a tag is listed when its full name or its architecture matches the pattern.
    """
    if pretrained:
        return sorted(
            tag.name
            for entry in entries()
            for tag in entry.tags
            if fnmatch.fnmatch(tag.name, pattern) or fnmatch.fnmatch(entry.name, pattern)
        )
    return [entry.name for entry in entries() if fnmatch.fnmatch(entry.name, pattern)]
