"""mobilebone's own checkpoint format: a safetensors file whose metadata describes the model.

Metadata (all strings, as safetensors requires): ``format`` = ``"mobilebone"``, ``format_version``,
``model_name`` (``arch`` or ``arch.tag``), ``config`` (JSON: architecture, num_classes, in_chans,
deploy, pretrained_cfg), ``fused`` (``"true"``/``"false"``) and ``mobilebone_version``.
Files are written atomically (``mobilebone.atomic``), so a failure never leaves half a file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from mobilebone.atomic import atomic_path
from mobilebone.checkpoints.detect import is_fused_state
from mobilebone.checkpoints.io import check_file, is_safetensors, is_torch_file, read_safetensors, unreadable

FORMAT_NAME = "mobilebone"
FORMAT_VERSION = "1"


def unwrap_model(model: nn.Module) -> nn.Module:
    """The backbone of a ``features_only`` model (``FeatureExtractor``), else the model itself."""
    from mobilebone.models.contract import FeatureExtractor

    return model.backbone if isinstance(model, FeatureExtractor) else model


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def atomic_save_safetensors(tensors: Mapping[str, Any], path: Path, metadata: dict[str, str]) -> Path:
    """Write ``tensors`` and ``metadata`` to the safetensors file ``path`` atomically (``atomic_path``)."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(dict(tensors), str(tmp), metadata=metadata)
    return path


def save_native(
    model: nn.Module,
    path: str | Path,
    *,
    model_name: str,
    fused: bool | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Save ``model``'s weights as a self-describing safetensors file (atomically); returns the path."""
    from mobilebone import __version__

    path = Path(path).expanduser()
    if path.suffix != ".safetensors":
        raise ValueError(f"native checkpoints are .safetensors files, got {path.name!r}; rename it")
    backbone = unwrap_model(model)
    # Clone: safetensors refuses tensors that share storage, and the copy leaves the model untouched.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in backbone.state_dict().items()}
    is_fused = is_fused_state(list(tensors)) if fused is None else bool(fused)
    config = {
        "architecture": model_name.split(".", 1)[0],
        "num_classes": getattr(backbone, "num_classes", None),
        "in_chans": getattr(backbone, "in_chans", None),
        "inference_mode": is_fused,
        "pretrained_cfg": _jsonable(getattr(backbone, "pretrained_cfg", {}) or {}),
    }
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "config": json.dumps(config, sort_keys=True),
        "fused": "true" if is_fused else "false",
        "mobilebone_version": __version__,
    }
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"metadata must map strings to strings, got {key!r}: {type(value).__name__}")
        if key in meta:
            raise ValueError(f"metadata key {key!r} is reserved by the native format; use another name")
        meta[key] = value
    return atomic_save_safetensors(tensors, path, meta)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a safetensors checkpoint (``{}`` for PyTorch pickles, which carry none)."""
    file = check_file(path)
    if not is_safetensors(file):
        if file.name.endswith(".safetensors") and not is_torch_file(file):
            raise unreadable(file, "safetensors")
        return {}  # a PyTorch file (whatever its name says) carries no metadata
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:  # type: ignore[no-untyped-call]
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError):
        raise unreadable(file, "safetensors") from None


def json_field(metadata: Mapping[str, str], field: str, kind: type, origin: str = "checkpoint") -> Any:
    """The JSON value of metadata ``field`` (``None`` when absent); a value that is not valid JSON of
    ``kind`` is refused naming the field, rather than silently replaced by defaults."""
    from mobilebone.checkpoints.errors import CheckpointError

    if field not in metadata:
        return None
    try:
        value = json.loads(metadata[field])
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{origin}: its metadata field {field!r} is not valid JSON ({err.msg}, at character {err.pos}); "
            f"the file was edited or damaged: save or convert it again"
        ) from None
    if not isinstance(value, kind):
        raise CheckpointError(
            f"{origin}: its metadata field {field!r} holds a {type(value).__name__}, expected a "
            f"{kind.__name__}; save or convert it again"
        )
    return value


def native_config(metadata: Mapping[str, str], origin: str = "checkpoint") -> dict[str, Any]:
    """The decoded ``config`` of native metadata (``{}`` when absent; invalid JSON raises)."""
    config = json_field(metadata, "config", dict, origin)
    return config if config is not None else {}


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "read_metadata", "read_safetensors", "save_native"]
