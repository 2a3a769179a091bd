"""mobilebone's own checkpoint format: a safetensors file whose metadata describes the model.

Metadata (all strings, as safetensors requires): ``format`` = ``"mobilebone"``, ``format_version``,
``model_name`` (``arch`` or ``arch.tag``), ``config`` (JSON: architecture, num_classes, in_chans,
inference_mode, pretrained_cfg), ``fused`` (``"true"``/``"false"``) and ``mobilebone_version``.
Files are written atomically (temporary file + ``os.replace``), so a failure never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from mobilebone.checkpoints.detect import is_fused_state
from mobilebone.checkpoints.errors import CheckpointError
from mobilebone.checkpoints.io import check_file, is_safetensors, read_safetensors

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
    """Write ``tensors`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_file(dict(tensors), tmp_name, metadata=metadata)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
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
        if file.name.endswith(".safetensors"):
            raise CheckpointError(f"cannot read {file}: not a valid safetensors file; save it again")
        return {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:  # type: ignore[no-untyped-call]
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"cannot read {file}: corrupted safetensors file ({err}); save it again"
        ) from None


def native_config(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The decoded ``config`` of native metadata (``{}`` when absent or not JSON)."""
    try:
        config = json.loads(metadata.get("config", "{}"))
    except json.JSONDecodeError:
        return {}
    return config if isinstance(config, dict) else {}


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "read_metadata", "read_safetensors", "save_native"]
