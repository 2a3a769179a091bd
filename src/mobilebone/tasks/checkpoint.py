"""Task model weights: a safetensors file whose metadata names the model, its classes and options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from mobilebone.atomic import atomic_path
from mobilebone.tasks.registry import get_task_entry

FORMAT = "mobilebone.task"


class TaskCheckpointError(ValueError):
    """A task weights file that cannot be used (unreadable, not a task file, or not matching the model)."""


# ``reparameterize_task_model`` marks its result so that its weights are saved as the deploy form.
DEPLOY_FORM_ATTR = "deploy_form"


def save_task_model(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model``'s weights and what rebuilds it (name, classes, input size, options) to ``path``.

    ``metadata`` adds string entries (``mobilebone train`` stores its config and class names). A model in
    deploy form (``reparameterize_task_model``) is recorded as such and loads into that form.
    """
    from safetensors.torch import save_file

    name = getattr(model, "task_name", None)
    if name is None:
        raise TaskCheckpointError("not a task model from create_detector / create_segmenter")
    options: dict[str, object] = {}
    if get_task_entry(name).task == "detection":
        options["size"] = int(model.input_size)  # type: ignore[arg-type]
    else:
        options["output_stride"] = int(model.output_stride)  # type: ignore[arg-type]
        if getattr(model, "aux_classifier", None) is not None:
            options["aux_loss"] = True
    metadata = {
        **(metadata or {}),
        "format": FORMAT,
        "task_model": name,
        "num_classes": str(int(model.num_classes)),  # type: ignore[arg-type]
        "options": json.dumps(options),
        "form": "deploy" if getattr(model, DEPLOY_FORM_ATTR, False) else "train",
    }
    # Clone: safetensors refuses tensors that share storage.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return Path(path)


def load_task_model(
    path: str | Path, *, model: str | None = None, num_classes: int | None = None
) -> nn.Module:
    """Rebuild and strictly load a task model saved by ``save_task_model``.

    ``model`` / ``num_classes``, when given, must match the file; a mismatch is one clear error.
    """
    from safetensors.torch import load_file

    from mobilebone.tasks.factory import create_detector, create_segmenter
    from mobilebone.tasks.reparam import reparameterize_task_model

    path = Path(path)
    meta = read_task_metadata(path)
    state = load_file(str(path))
    name, classes = meta["task_model"], int(meta["num_classes"])
    if model is not None and model != name:
        raise TaskCheckpointError(f"{path} holds {name}, not {model}")
    if num_classes is not None and num_classes != classes:
        raise TaskCheckpointError(f"{path} was trained for {classes} classes, not {num_classes}")
    options = json.loads(meta.get("options", "{}"))
    entry = get_task_entry(name)
    if entry.task == "segmentation":
        options.setdefault("output_stride", 32)  # files written before the option were output stride 32
    build = create_detector if entry.task == "detection" else create_segmenter
    net = build(name, num_classes=classes, **options)
    if meta.get("form") == "deploy":
        net = reparameterize_task_model(net, inplace=True)
    load_into(net, state, path, name)
    return net.eval()


def read_task_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a task weights file; a missing, unreadable or non-task file is one clear error."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights not found: {path}")
    try:
        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise TaskCheckpointError(f"{path}: not a safetensors file ({err})") from None
    if meta.get("format") != FORMAT:
        raise TaskCheckpointError(f"{path}: not a mobilebone task model file (save one with save_task_model)")
    return dict(meta)


def class_names(path: str | Path, num_classes: int) -> list[str]:
    """The class names stored in a task weights file (``mobilebone train`` stores them), else ``class i``.

    Index 0 is the background, as in torchvision's detectors and segmenters.
    """
    import json

    stored = read_task_metadata(path).get("classes")
    if stored is not None:
        names = json.loads(stored)
        if isinstance(names, list) and len(names) == num_classes:
            return [str(name) for name in names]
    return ["background", *(f"class {i}" for i in range(1, num_classes))]


def load_into(net: nn.Module, state: dict[str, Any], path: str | Path, name: str) -> None:
    """Load ``state`` into ``net`` strictly; a key mismatch is one ``TaskCheckpointError``."""
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TaskCheckpointError(
            f"{path} does not fit {name}: {len(missing)} missing keys (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
