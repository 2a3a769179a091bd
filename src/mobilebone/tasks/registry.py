"""Typed registry of task models: one entry per (head kind × backbone), e.g. ``ssdlite_mobileone_s0``."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mobilebone.registry import list_models, resolve

if TYPE_CHECKING:
    from torch import nn

Task = Literal["detection", "segmentation"]
TASKS: tuple[Task, ...] = ("detection", "segmentation")
# ``bench --task`` default square input: torchvision's SSDLite size for detectors, 512 px for segmenters.
BENCH_INPUT_SIZE: dict[Task, int] = {"detection": 320, "segmentation": 512}


@dataclass(frozen=True)
class HeadKind:
    """A head family: its task, default square input size and builder ``(backbone, num_classes, **kw)``.

    ``builder`` is ``"module:function"``, imported only when a model is built, so listing names needs no torch.
    ``reference`` is the torchvision MobileNetV3 model ``bench --task`` compares this head with (torchvision
    has no MobileNetV3 RetinaNet, so RetinaNet is compared with the SSDLite detector).
    """

    name: str
    task: Task
    input_size: int
    builder: str
    reference: str
    options: tuple[str, ...] = ()  # keyword options the builder accepts besides weights

    def build(self, backbone: str, num_classes: int, **kwargs: object) -> nn.Module:
        """Build this head on ``backbone`` (resolving the builder on first use)."""
        return resolve(self.builder)(backbone, num_classes, **kwargs)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class TaskEntry:
    """One registered task model."""

    name: str
    head: HeadKind
    backbone: str

    @property
    def task(self) -> Task:
        return self.head.task

    @property
    def input_size(self) -> int:
        return self.head.input_size


_DET = "mobilebone.tasks.detection"
_SEG = "mobilebone.tasks.segmentation"


def _heads() -> dict[str, HeadKind]:
    ssdlite_tv = "torchvision.models.detection:ssdlite320_mobilenet_v3_large"
    kinds = (
        HeadKind("ssdlite", "detection", 320, f"{_DET}:build_ssdlite", ssdlite_tv, ("size",)),
        HeadKind("retinanet", "detection", 384, f"{_DET}:build_retinanet", ssdlite_tv, ("size",)),
        HeadKind(
            "deeplabv3",
            "segmentation",
            512,
            f"{_SEG}:build_deeplabv3",
            "torchvision.models.segmentation:deeplabv3_mobilenet_v3_large",
            ("aux_loss", "output_stride"),
        ),
        HeadKind(
            "lraspp",
            "segmentation",
            512,
            f"{_SEG}:build_lraspp",
            "torchvision.models.segmentation:lraspp_mobilenet_v3_large",
            ("output_stride",),
        ),
    )
    return {kind.name: kind for kind in kinds}


HEADS: dict[str, HeadKind] = _heads()


def _entries() -> dict[str, TaskEntry]:
    return {
        f"{head.name}_{backbone}": TaskEntry(f"{head.name}_{backbone}", head, backbone)
        for head in HEADS.values()
        for backbone in list_models()
    }


_ENTRIES: dict[str, TaskEntry] = _entries()


def list_task_models(task: Task | None = None, pattern: str = "*") -> list[str]:
    """Names of registered task models (of ``task`` when given) matching ``pattern``, sorted."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    return sorted(
        name
        for name, entry in _ENTRIES.items()
        if (task is None or entry.task == task) and fnmatch.fnmatch(name, pattern)
    )


def get_task_entry(name: str, task: Task | None = None) -> TaskEntry:
    """The entry of ``name``; an unknown name (or one of another task) is a ``ValueError`` with hints."""
    entry = _ENTRIES.get(name)
    if entry is None or (task is not None and entry.task != task):
        import difflib

        candidates = list_task_models(task)
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        kind = f"{task} model" if task else "task model"
        hint = (
            f"; did you mean: {', '.join(close)}?" if close else f"; known: {', '.join(candidates[:8])}, ..."
        )
        raise ValueError(f"unknown {kind} {name!r}{hint}")
    return entry
