"""Detection and segmentation on the resumable training loop (``mobilebone.training.train``).

``resolve_task_config`` builds a run's ``TrainConfig`` from a head's recipe (``recipes``) and overrides;
``make_task`` gives the loop the matching ``Task`` (classification included, so a resumed run of any task
is rebuilt from its saved config alone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobilebone.training.config import NONE_IS_A_VALUE, TrainConfig, validate
from mobilebone.training.task import Task

TASK_CLASSES = {
    "detection": "mobilebone.tasks.training.detection:DetectionTask",
    "segmentation": "mobilebone.tasks.training.segmentation:SegmentationTask",
}


def make_task(cfg: TrainConfig) -> Task:
    """The ``Task`` that trains ``cfg`` (``cfg.task``)."""
    if cfg.task == "classification":
        from mobilebone.training.classification import ClassificationTask

        return ClassificationTask(cfg)
    from mobilebone.registry import resolve

    return resolve(TASK_CLASSES[cfg.task])(cfg)  # type: ignore[no-any-return]


def resolve_task_config(task: str, model: str, data: str | None = None, **overrides: Any) -> TrainConfig:
    """A detection / segmentation run's config: the recipe (``head`` with data, else ``embedded``), then overrides."""
    from mobilebone.tasks.registry import get_task_entry
    from mobilebone.tasks.training.recipes import task_recipe

    entry = get_task_entry(model, task)  # type: ignore[arg-type]  # unknown names raise with close matches
    recipe = overrides.pop("recipe", None) or ("embedded" if data is None else "head")
    values = task_recipe(recipe, task, entry.head.name).values()
    values.update({k: v for k, v in overrides.items() if v is not None or k in NONE_IS_A_VALUE})
    values.pop("task", None)
    cfg = TrainConfig(task=task, model=entry.name, data=data, recipe=recipe, **values)  # type: ignore[arg-type]
    validate_task(cfg)
    return cfg


def validate_task(cfg: TrainConfig) -> None:
    """``validate`` plus the task settings: layout, auxiliary loss, data root."""
    from mobilebone.tasks.data.layouts import get_layout
    from mobilebone.tasks.registry import get_task_entry

    validate(cfg)
    entry = get_task_entry(cfg.model, cfg.task)  # type: ignore[arg-type]
    if cfg.data is None and cfg.data_layout is not None:
        raise ValueError("--data-layout needs --data (without it the embedded shapes set is used)")
    if cfg.data is not None:  # a wrong root fails in a second, before the run folder is written
        get_layout(cfg.data_layout, cfg.task).check(Path(cfg.data).expanduser())
    if cfg.aux_loss and "aux_loss" not in entry.head.options:
        raise ValueError(f"--aux-loss: {entry.head.name} models have no auxiliary head")
