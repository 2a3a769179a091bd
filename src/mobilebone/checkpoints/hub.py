"""Pretrained weights from the Hugging Face Hub (``timm/<arch>.<tag>``), with the local cache offline.

``huggingface_hub`` does the work and owns the cache (``HF_HOME`` / ``HF_HUB_CACHE``). The order:
(1) a file already in the cache is used as it is, without contacting the Hub (published weights do not
change); (2) with ``HF_HUB_OFFLINE=1`` nothing else is tried; (3) one metadata request
(``get_hf_file_metadata``, no retries, ``HF_HUB_ETAG_TIMEOUT`` seconds at most) tells whether the Hub
can be reached; (4) only then ``hf_hub_download`` fetches the file. Step 3 exists because
``hf_hub_download`` retries a failed connection five times with back-off (~25 s of log lines) when
the file is not cached; offline, the error below comes at once instead. It names the file, its URL
and the local-file alternative: ``pretrained=PATH`` in Python, ``--weights PATH`` on the command line.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from mobilebone.checkpoints.errors import CheckpointError
from mobilebone.checkpoints.tags import HUB_FILENAME, PretrainedTag, default_tag, get_tag, is_tag


def cached_file(tag: PretrainedTag) -> Path | None:
    """The tag's ``model.safetensors`` in the Hugging Face cache, or ``None`` when it is not there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id=tag.hf_hub_id, filename=HUB_FILENAME)
    return Path(found) if isinstance(found, str) else None


def download(tag: PretrainedTag) -> Path:
    """Path of the tag's ``model.safetensors`` in the Hugging Face cache, downloading it if needed."""
    import huggingface_hub
    from huggingface_hub import constants

    cached = cached_file(tag)
    if cached is not None:
        return cached
    url = huggingface_hub.hf_hub_url(repo_id=tag.hf_hub_id, filename=HUB_FILENAME)
    if huggingface_hub.is_offline_mode():
        raise _unavailable(tag, url, "HF_HUB_OFFLINE is set")
    try:
        # One request without retries: fails in well under a second when there is no network.
        huggingface_hub.get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT)
        return Path(huggingface_hub.hf_hub_download(repo_id=tag.hf_hub_id, filename=HUB_FILENAME))
    except KeyboardInterrupt:
        raise
    except Exception as err:
        raise _unavailable(tag, url, _reason(err)) from None


def _reason(err: BaseException) -> str:
    """``Type: first sentence`` of an exception, for a one-line message."""
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    sentence = text.split(". ")[0].rstrip(".")
    return f"{type(err).__name__}: {sentence}" if sentence else type(err).__name__


def _unavailable(tag: PretrainedTag, url: str, reason: str) -> CheckpointError:
    """The one-line error for weights neither cached nor downloadable, with both local-file hints."""
    local = f"/path/to/{HUB_FILENAME}"
    problem = (
        f"cannot get the weights {tag.name}: {HUB_FILENAME} of {tag.hf_hub_id} is not in the Hugging Face "
        f"cache and could not be downloaded ({reason}); download {url} and pass the file"
    )
    return CheckpointError(
        f"{problem}: create_model({tag.arch!r}, pretrained='{local}')",
        cli_message=f"{problem}: --weights {local} (add --model {tag.name} for its preprocessing)",
    )


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


HUB_PREFIX = "hf-hub:"
HUB_CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class HubRepo:
    """A timm-layout Hugging Face Hub repository, downloaded: what ``create_model("hf-hub:…")`` builds."""

    repo_id: str
    architecture: str
    num_classes: int
    weights: Path
    pretrained_cfg: dict[str, Any]


def fetch_hub_repo(name: str) -> HubRepo:
    """Download ``config.json`` and ``model.safetensors`` of ``"hf-hub:owner/name"`` (cached by huggingface_hub)."""
    import json

    from huggingface_hub import hf_hub_download

    repo_id = name[len(HUB_PREFIX) :]
    if repo_id.count("/") != 1:
        raise ValueError(f"expected hf-hub:owner/name, got {name!r}")
    config_path = Path(hf_hub_download(repo_id=repo_id, filename=HUB_CONFIG_FILE))
    config = json.loads(config_path.read_text(encoding="utf-8"))
    arch = config.get("architecture")
    if not isinstance(arch, str):
        raise ValueError(
            f"{repo_id}/{HUB_CONFIG_FILE} names no architecture; is it a timm-layout repository?"
        )
    weights = Path(hf_hub_download(repo_id=repo_id, filename=HUB_FILENAME))
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in config.get("pretrained_cfg", {}).items()}
    cfg.update({"architecture": arch, "hf_hub_id": repo_id, "source": "hf-hub"})
    return HubRepo(repo_id, arch, int(config.get("num_classes", 1000)), weights, cfg)
