"""``bench --task``: latency, params and MACs of task models beside torchvision's MobileNetV3 ones, one run.

Each of our models is timed interleaved (``mobilebone.timing.time_interleaved``) with the torchvision model
its head names as ``reference`` (``ssdlite320_mobilenet_v3_large``, ``deeplabv3_mobilenet_v3_large``,
``lraspp_mobilenet_v3_large``; random weights, nothing downloaded), on the same batch at the same input
size, so the ratio compares two models under the same machine conditions. Ours run in deploy form
(``reparameterize_task_model``: branches and head BatchNorms folded) unless ``deploy=False``; torchvision's
run as built, in eval mode. Both run in PyTorch eager.

What is timed is the raw view (``mobilebone.tasks.raw_outputs``): detectors map a batch already at the
model's input size to their raw head outputs (box regressions and class logits), so resizing, anchor
decoding and NMS are excluded for both; segmenters return their ``"out"`` logits at input resolution
(upsampling included). torchvision's detectors have the same ``backbone`` / ``head`` / ``transform`` parts,
so one raw view serves both.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from mobilebone.analysis.complexity import count_macs, count_params
from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.runtimes import prepare, scratch_dir, torch_threads
from mobilebone.registry import resolve
from mobilebone.tasks.factory import create_detector, create_segmenter
from mobilebone.tasks.raw import raw_outputs
from mobilebone.tasks.registry import BENCH_INPUT_SIZE, TASKS, Task, get_task_entry, list_task_models
from mobilebone.tasks.reparam import reparameterize_task_model
from mobilebone.timing import time_interleaved

# Class counts of the torchvision references (COCO with background; Pascal VOC), used for ours too.
NUM_CLASSES: dict[Task, int] = {"detection": 91, "segmentation": 21}
WHAT_IS_TIMED: dict[Task, str] = {
    "detection": "backbone + head on a batch already at the input size; raw box regressions and class "
    "logits (no resizing, anchor decoding or NMS)",
    "segmentation": "whole model; 'out' logits upsampled to the input size",
}


@dataclass(frozen=True)
class TaskBenchSettings:
    """One ``bench --task`` run: which task, how many runs, threads, input size, form."""

    task: Task
    threads: int
    runs: int = 50
    warmup: int = 5
    input_size: int | None = None  # None: BENCH_INPUT_SIZE[task]
    batch_size: int = 1
    deploy: bool = True
    max_seconds: float | None = None

    @property
    def size(self) -> int:
        """The square input side actually used."""
        return self.input_size or BENCH_INPUT_SIZE[self.task]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings (with the resolved input size)."""
        return asdict(self) | {"input_size": self.size, "timed": WHAT_IS_TIMED[self.task]}


def resolve_task_models(task: Task, patterns: Sequence[str] | None) -> list[str]:
    """Task model names from names or globs; an unknown name (or one of the other task) is one ``ValueError``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    if not patterns:
        return list_task_models(task)
    names: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            matched = list_task_models(task, pattern)
            if not matched:
                raise ValueError(
                    f"no {task} model matches {pattern!r}; see mobilebone.tasks.list_task_models"
                )
        else:
            matched = [get_task_entry(pattern, task).name]
        names.extend(n for n in matched if n not in names)
    return names


def build_reference(spec: str, num_classes: int) -> nn.Module:
    """A torchvision reference (``"module:function"``) with random weights, nothing downloaded, in eval mode."""
    builder = resolve(spec)
    return builder(weights=None, weights_backbone=None, num_classes=num_classes).eval()  # type: ignore[no-any-return]


def _build_ours(name: str, task: Task, size: int, deploy: bool) -> nn.Module:
    model: nn.Module
    if task == "detection":
        model = create_detector(name, NUM_CLASSES[task], size=size)
    else:
        model = create_segmenter(name, NUM_CLASSES[task])
    model = reparameterize_task_model(model) if deploy else model.eval()
    return raw_outputs(model).eval()


def _complexity(view: nn.Module, shape: tuple[int, int, int, int]) -> dict[str, int]:
    return {"params": count_params(view), "macs": count_macs(view, (1, *shape[1:])).total}


def _stats(samples: list[float]) -> dict[str, float | int]:
    return {"runs": len(samples), "min_ms": min(samples), "median_ms": statistics.median(samples)}


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def bench_task(
    names: Sequence[str],
    settings: TaskBenchSettings,
    *,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Time every model of ``names`` interleaved with its torchvision reference; return the results document.

    The document has ``settings``, ``environment``, ``references`` (params and MACs of each torchvision
    model) and one row per model (``status`` ``ok`` or ``failed`` with a one-line ``error``).
    """
    task = settings.task
    shape = (settings.batch_size, 3, settings.size, settings.size)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    references: dict[str, dict[str, Any]] = {}
    ref_views: dict[str, nn.Module] = {}
    rows: list[dict[str, Any]] = []
    with torch_threads(settings.threads), scratch_dir() as workdir:
        for name in names:
            entry = get_task_entry(name, task)
            spec = entry.head.reference
            row: dict[str, Any] = {"model": name, "head": entry.head.name, "backbone": entry.backbone}
            row["reference"] = spec.rsplit(":", 1)[-1]
            try:
                if spec not in ref_views:
                    ref_views[spec] = raw_outputs(build_reference(spec, NUM_CLASSES[task])).eval()
                    references[row["reference"]] = _complexity(ref_views[spec], shape)
                view = _build_ours(name, task, settings.size, settings.deploy)
                row.update(_complexity(view, shape))
                calls = {
                    "ours": prepare("eager", view, x, settings.threads, workdir).run,
                    "reference": prepare("eager", ref_views[spec], x, settings.threads, workdir).run,
                }
                samples = time_interleaved(
                    calls, runs=settings.runs, warmup=settings.warmup, max_seconds=settings.max_seconds
                )
            except Exception as err:  # one model failing must not lose the others' rows
                row.update(status="failed", error=_one_line(err))
            else:
                ours, ref = _stats(samples["ours"]), _stats(samples["reference"])
                row.update(ours)
                row.update({f"reference_{k}": v for k, v in ref.items() if k != "runs"})
                row["ratio_min"] = ours["min_ms"] / ref["min_ms"]
                row["ratio_median"] = ours["median_ms"] / ref["median_ms"]
                row.update(status="ok", error=None, samples_ms=samples["ours"])
                row["reference_samples_ms"] = samples["reference"]
            rows.append(row)
            if on_row is not None:
                on_row(row)
    environment = capture_environment(settings.threads, runtime="eager", deploy=settings.deploy)
    environment["reference_form"] = "torchvision as built, eval mode (BatchNorm not folded)"
    return {
        "settings": settings.to_dict(),
        "environment": environment,
        "references": references,
        "rows": rows,
    }
