"""What every exporter does first: a deploy copy of the model, an example input, an atomic output path."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mobilebone.atomic import atomic_path
from mobilebone.export.errors import ExportError
from mobilebone.export.verify import Reference, float64_output
from mobilebone.layers.attention import set_attention_impl
from mobilebone.reparam import reparameterize_model


def input_hw(input_size: int | tuple[int, int]) -> tuple[int, int]:
    """Normalize ``224`` or ``(224, 224)`` (or a ``(C, H, W)`` cfg tuple) to ``(height, width)``."""
    if isinstance(input_size, int):
        return input_size, input_size
    size = tuple(int(s) for s in input_size)
    if len(size) == 3:
        size = size[1:]
    if len(size) != 2:
        raise ExportError(f"input_size must be N or (H, W), got {input_size!r}")
    return size[0], size[1]


def in_chans_of(model: nn.Module) -> int:
    """The model's declared input channel count (3 when it declares none)."""
    return int(getattr(model, "in_chans", 3))


def prepare_for_export(model: nn.Module) -> nn.Module:
    """A deploy copy: every branch and BatchNorm folded, eval mode, export-friendly attention path.

    The original model is not modified. Mobile-MQA modules are switched to their explicit-matmul path
    because exporters and converters handle it everywhere (``scaled_dot_product_attention`` is not).
    """
    deploy = reparameterize_model(copy.deepcopy(model), inplace=True)
    set_attention_impl(deploy, "matmul")
    for parameter in deploy.parameters():
        parameter.requires_grad_(False)
    return deploy


def preprocessing_cfg(model: nn.Module) -> dict[str, Any]:
    """The model's eval preprocessing (``pretrained_cfg``: architecture, input_size, mean, std, …), JSON-able."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    keys = ("architecture", "input_size", "crop_pct", "interpolation", "mean", "std", "num_classes")
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items() if k in keys}


def example_input(
    model: nn.Module, input_size: int | tuple[int, int], batch_size: int = 1, seed: int = 0
) -> Tensor:
    """A reproducible N(0, 1) batch shaped for ``model`` (normalized images are roughly N(0, 1))."""
    if batch_size < 1:
        raise ExportError(f"batch_size must be >= 1, got {batch_size}")
    height, width = input_hw(input_size)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, in_chans_of(model), height, width, generator=generator)


@torch.no_grad()
def reference_output(model: nn.Module, x: Tensor) -> Tensor:
    """Run the deploy model; reject inputs it cannot take and outputs no runtime could be checked against."""
    try:
        out = model(x)
    except (ValueError, RuntimeError) as err:
        raise ExportError(f"the model cannot run on an input of shape {tuple(x.shape)}: {err}") from err
    if not isinstance(out, Tensor):
        raise ExportError(
            f"export needs a model returning one tensor, got {type(out).__name__}; "
            "export the classifier, not a features_only model"
        )
    if not torch.isfinite(out).all():
        raise ExportError(
            "the model produces non-finite outputs on a N(0, 1) input; load trained weights (--weights) "
            "or fix the BatchNorm statistics before exporting"
        )
    return out


def reference(model: nn.Module, x: Tensor) -> Reference:
    """The deploy model's output on ``x`` in float32 (checked as ``reference_output``) and in float64."""
    return Reference(x, reference_output(model, x), float64_output(model, x))


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path``, on any error it is removed.

    ``mobilebone.atomic.atomic_path`` with the export's own checks: the output must not be an existing
    folder (except an ``.mlpackage``, which is one), and a writer that produced nothing is an
    ``ExportError``. Missing output folders are created (and removed again if the export fails).
    """
    target = Path(path).expanduser()
    if target.is_dir() and target.suffix != ".mlpackage":
        raise ExportError(
            f"output {str(target)!r} is a directory; give a file name, e.g. {target}/model.onnx"
        )
    with atomic_path(target) as tmp:
        yield tmp
        if not tmp.exists():
            raise ExportError(f"the exporter wrote nothing to {tmp}")
