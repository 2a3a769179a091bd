"""Pretrained weights from the Hugging Face Hub (``timm/<arch>.<tag>``), with the local cache offline.

``huggingface_hub`` does the work: it downloads once into its cache (``HF_HOME`` / ``HF_HUB_CACHE``),
and with ``HF_HUB_OFFLINE=1`` or no network it returns the cached file. When neither works the error
names the file to fetch and the local-path alternative.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from torch import nn

from mobilebone.checkpoints.errors import CheckpointError
from mobilebone.checkpoints.tags import HUB_FILENAME, PretrainedTag, default_tag, get_tag, is_tag


def download(tag: PretrainedTag) -> Path:
    """Path of the tag's ``model.safetensors`` in the Hugging Face cache, downloading it if needed."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=tag.hf_hub_id, filename=HUB_FILENAME))
    except KeyboardInterrupt:
        raise
    except Exception as err:
        text = str(err).splitlines()[0] if str(err) else ""
        reason = text.split(". ")[0][:160] or type(err).__name__
        url = f"https://huggingface.co/{tag.hf_hub_id}/resolve/main/{HUB_FILENAME}"
        raise CheckpointError(
            f"cannot get the weights {tag.name}: {HUB_FILENAME} of {tag.hf_hub_id} could not be downloaded "
            f"and is not in the Hugging Face cache ({type(err).__name__}: {reason}); download {url} "
            f"and pass the file: create_model({tag.arch!r}, pretrained='/path/to/{HUB_FILENAME}')"
        ) from None


def _resolve(name: str, pretrained: bool | str) -> tuple[PretrainedTag | None, str | None]:
    """Which tag (or local file) ``create_model(name, pretrained=...)`` asks for."""
    arch, _, name_tag = name.partition(".")
    if pretrained is True:
        return (get_tag(name_tag, arch) if name_tag else default_tag(arch)), None
    text = str(pretrained)
    if Path(text).expanduser().exists():
        return None, text
    if is_tag(text, arch):
        tag = get_tag(text, arch)
        if tag.arch != arch:
            raise ValueError(
                f"weights {tag.name} are for {tag.arch}, not {arch}; use create_model({tag.arch!r}, ...)"
            )
        return tag, None
    raise FileNotFoundError(
        f"pretrained={text!r} is neither an existing file nor a weight tag of {arch}; pass a checkpoint path "
        f"or one of: {', '.join(t for t in _tags_of(arch)) or '(none)'}"
    )


def _tags_of(arch: str) -> list[str]:
    from mobilebone.checkpoints.tags import list_pretrained

    return list_pretrained(arch)


def load_pretrained(model: nn.Module, name: str, pretrained: bool | str) -> nn.Module:
    """Load ``create_model``'s ``pretrained`` weights (default tag, a tag, or a file) into ``model``.

    As in timm, a model built with a different ``num_classes`` than the weights keeps a freshly
    initialised classifier (for fine-tuning), with a warning; everything else must match exactly.
    """
    import torch

    from mobilebone.checkpoints.load import load_into, read
    from mobilebone.checkpoints.native import unwrap_model

    tag, path = _resolve(name, pretrained)
    ckpt = read(path) if path is not None else read(tag.name)  # type: ignore[union-attr]
    target = unwrap_model(model)
    model_classes = getattr(target, "num_classes", None)
    skip = bool(model_classes) and ckpt.num_classes > 0 and model_classes != ckpt.num_classes
    if skip:
        warnings.warn(
            f"the classifier of {ckpt.origin} was not loaded: the weights have {ckpt.num_classes} classes, "
            f"the model {model_classes} (it keeps a fresh classifier; pass num_classes={ckpt.num_classes} "
            f"to use the pretrained one)",
            stacklevel=3,
        )
    with torch.no_grad():
        load_into(model, ckpt, strict=True, skip_classifier=skip)
    cfg = ckpt.cfg()
    current = getattr(target, "pretrained_cfg", None)
    if cfg and isinstance(current, dict):
        cfg["num_classes"] = model_classes
        current.update(cfg)
    return model
