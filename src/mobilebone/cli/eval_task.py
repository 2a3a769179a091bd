"""``mobilebone eval --task detection|segmentation``: mAP / mIoU of task-model weights on a held-out split."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _trained(metadata: dict[str, str]) -> dict[str, Any]:
    """The training config stored by ``mobilebone train`` (empty for files saved otherwise)."""
    try:
        value = json.loads(metadata.get("training_config", "{}"))
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def run_task(args: argparse.Namespace) -> int:
    """Load the task model, open the held-out split, score it and print the metrics."""
    import torch

    from mobilebone.cli.main import CliError
    from mobilebone.tasks.checkpoint import load_task_model, read_task_metadata
    from mobilebone.tasks.registry import get_task_entry
    from mobilebone.tasks.training import make_task
    from mobilebone.tasks.training.common import open_split
    from mobilebone.training.config import TrainConfig
    from mobilebone.training.data import Transformed, eval_loader
    from mobilebone.training.distributed import DistInfo

    if args.model is not None:
        get_task_entry(args.model, args.task)
    metadata = read_task_metadata(args.weights)
    held = get_task_entry(metadata["task_model"])
    if held.task != args.task:
        raise CliError(f"{args.weights} holds a {held.task} model ({held.name}), not a {args.task} one")
    model = load_task_model(args.weights, model=args.model)
    trained = _trained(metadata)
    size = args.input_size or trained.get("input_size") or int(getattr(model, "input_size", held.input_size))
    cfg = TrainConfig(
        task=args.task,
        model=held.name,
        data=args.data,
        data_layout=args.data_layout,
        input_size=int(size),
        embedded_val=args.embedded_val or int(trained.get("embedded_val", 1000)),
        data_seed=args.data_seed if args.data_seed is not None else int(trained.get("data_seed", 0)),
    )
    task = make_task(cfg)
    dataset, classes, where = open_split(cfg, "val")
    num_classes = int(model.num_classes)  # type: ignore[arg-type]
    if len(classes) != num_classes:
        raise CliError(
            f"{args.weights} has {num_classes} classes (background included) but {where} has "
            f"{len(classes)}; evaluate weights trained on this dataset"
        )
    from mobilebone.tasks.data.transforms import detection_transforms, segmentation_transforms

    transform = (
        detection_transforms(False) if args.task == "detection" else segmentation_transforms(False, size)
    )
    data = Transformed(dataset, transform, joint=True)
    loader = eval_loader(data, batch_size=args.batch_size, workers=args.workers, collate_fn=task.collate)
    with torch.inference_mode():
        scores = task.evaluate([model], loader, DistInfo())[0]
    shown = {
        "detection": (("map", "mAP@[.5:.95]"), ("map50", "mAP@.5")),
        "segmentation": (("miou", "mIoU"), ("pixel_accuracy", "pixel accuracy")),
    }[args.task]
    print(
        f"{held.name} ({args.weights}) on {where}, {len(data)} images at {size} px: "
        + ", ".join(f"{label} {scores[key]:.2f} %" for key, label in shown)
    )
    return 0
