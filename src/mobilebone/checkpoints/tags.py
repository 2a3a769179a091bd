"""Pretrained weight tags (``arch.tag``, as timm names them): look-ups over the tags each model declares.

The tags and their eval preprocessing are declared on the registry entries, next to each model
(``models/*cfgs.py``); all weights live on the Hugging Face Hub as ``timm/<arch>.<tag>`` /
``model.safetensors`` in timm's key layout. This module imports no torch.
"""

from __future__ import annotations

from mobilebone.registry import HUB_FILENAME, PretrainedTag, entries, get_entry, list_models

__all__ = [
    "HUB_FILENAME",
    "PretrainedTag",
    "all_tags",
    "default_tag",
    "get_tag",
    "is_tag",
    "list_pretrained",
]


def all_tags() -> dict[str, PretrainedTag]:
    """Every declared weight tag by ``arch.tag`` name."""
    return {tag.name: tag for entry in entries() for tag in entry.tags}


def list_pretrained(pattern: str = "*") -> list[str]:
    """``arch.tag`` names of every weight set whose full name or architecture matches ``pattern``."""
    return list_models(pattern, pretrained=True)


def default_tag(arch: str) -> PretrainedTag:
    """The default weights of an architecture (the first tag declared for it)."""
    tags = get_entry(arch).tags
    if not tags:
        raise ValueError(f"no pretrained weights are known for {arch!r}; run `mobilebone list --pretrained`")
    return tags[0]


def _full(name: str, arch: str | None) -> str:
    return name if "." in name else f"{arch}.{name}"


def get_tag(name: str, arch: str | None = None) -> PretrainedTag:
    """Look up ``arch.tag`` (or a bare ``tag`` of ``arch``); an unknown name raises listing the known ones."""
    full = _full(name, arch)
    tags = all_tags()
    if full in tags:
        return tags[full]
    model = full.split(".", 1)[0]
    known = [t for t in tags if t.split(".", 1)[0] == model] or sorted(tags)
    raise ValueError(f"unknown weight tag {name!r}; known tags: {', '.join(known)}")


def is_tag(name: str, arch: str | None = None) -> bool:
    """True when ``name`` names known weights (``arch.tag``, or a bare tag of ``arch``)."""
    return _full(name, arch) in all_tags()
