"""The detection / segmentation recipes: one typed table, per head, of every value a run starts from.

Two recipes per head: ``head`` for real data (values from torchvision's reference training commands,
``references/detection/README.md`` and ``references/segmentation/README.md``, for the MobileNetV3 models;
the learning rate is given per reference global batch and scaled linearly, and the schedule here is the
loop's cosine with warm-up rather than torchvision's multi-step / poly), and ``embedded`` for the embedded
shapes set (minutes on a CPU; not from a paper). Change a value here and every run and the docs'
table follow; any value can also be overridden by its ``train`` flag, and the resolved values are saved in
the run's ``config.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mobilebone.training.config import Optimizer


@dataclass(frozen=True)
class TaskRecipe:
    """The ``TrainConfig`` values a recipe sets (``lr_base`` is per ``lr_base_size`` images, scaled linearly)."""

    input_size: int
    epochs: int
    batch_size: int
    optimizer: Optimizer
    lr_base: float
    lr_base_size: int
    weight_decay: float
    warmup_epochs: float
    min_lr: float = 0.0
    aux_loss: bool = False
    ema_decay: float = 0.0
    grad_clip: float = 0.0
    workers: int = 4
    checkpoint_every: int = 200
    embedded_train: int = 4000
    embedded_val: int = 1000
    source: str = ""

    def values(self) -> dict[str, Any]:
        """The recipe as ``TrainConfig`` keyword values (``source`` goes to ``notes``)."""
        values = dataclasses.asdict(self)
        values["notes"] = {"source": values.pop("source")}
        values.update(lr_scaling="linear", weight_decay_end=None, momentum=0.9)
        return values


_TV = "torchvision references/{task}/README.md ({model}): {text}"

# Head name → its real-data recipe.
HEAD_RECIPES: dict[str, TaskRecipe] = {
    "ssdlite": TaskRecipe(
        input_size=320,
        epochs=600,
        batch_size=24,
        optimizer="sgd",
        lr_base=0.15,
        lr_base_size=192,
        weight_decay=4e-5,
        warmup_epochs=1.0,
        source=_TV.format(
            task="detection",
            model="ssdlite320_mobilenet_v3_large",
            text="SGD lr 0.15 at batch 24 x 8 GPUs, cosine, 600 epochs, weight decay 4e-5",
        ),
    ),
    "retinanet": TaskRecipe(
        input_size=384,
        epochs=26,
        batch_size=2,
        optimizer="sgd",
        lr_base=0.01,
        lr_base_size=16,
        weight_decay=1e-4,
        warmup_epochs=1.0,
        source=_TV.format(
            task="detection",
            model="retinanet_resnet50_fpn",
            text="SGD lr 0.01 at batch 2 x 8 GPUs, 26 epochs (steps at 16, 22; cosine here), weight decay 1e-4",
        ),
    ),
    "deeplabv3": TaskRecipe(
        input_size=512,
        epochs=30,
        batch_size=4,
        optimizer="sgd",
        lr_base=0.02,
        lr_base_size=32,
        weight_decay=1e-6,
        warmup_epochs=0.0,
        aux_loss=True,
        source=_TV.format(
            task="segmentation",
            model="deeplabv3_mobilenet_v3_large",
            text="SGD lr 0.02 at batch 4 x 8 GPUs, 30 epochs (poly; cosine here), weight decay 1e-6, aux loss",
        ),
    ),
    "lraspp": TaskRecipe(
        input_size=512,
        epochs=30,
        batch_size=4,
        optimizer="sgd",
        lr_base=0.02,
        lr_base_size=32,
        weight_decay=1e-6,
        warmup_epochs=0.0,
        source=_TV.format(
            task="segmentation",
            model="lraspp_mobilenet_v3_large",
            text="SGD lr 0.02 at batch 4 x 8 GPUs, 30 epochs (poly; cosine here), weight decay 1e-6",
        ),
    ),
}

_EMBEDDED_SOURCE = "mobilebone's embedded task demo recipe (not from a paper)"

# The embedded shapes set's demo recipe; detection and segmentation differ only in input size.
_EMBEDDED = TaskRecipe(
    input_size=160,
    epochs=3,
    batch_size=8,
    optimizer="adamw",
    lr_base=3e-3,
    lr_base_size=8,
    weight_decay=0.05,
    warmup_epochs=0.1,
    min_lr=3e-5,
    workers=0,
    checkpoint_every=100,
    embedded_train=4000,
    embedded_val=128,
    source=_EMBEDDED_SOURCE,
)

# Task → its recipe on the embedded shapes set (AdamW as in ``python -m mobilebone.tasks.train``).
EMBEDDED_RECIPES: dict[str, TaskRecipe] = {
    "detection": _EMBEDDED,
    "segmentation": dataclasses.replace(_EMBEDDED, input_size=128),
}


def task_recipe(recipe: str, task: str, head: str) -> TaskRecipe:
    """The ``embedded`` recipe of ``task`` or the ``head`` recipe of ``head``."""
    if recipe == "embedded":
        return EMBEDDED_RECIPES[task]
    if recipe == "head":
        return HEAD_RECIPES[head]
    raise ValueError(f"--recipe {recipe} is a classification recipe; --task {task} takes head or embedded")
