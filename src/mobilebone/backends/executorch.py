"""ExecuTorch with the XNNPACK delegate (PyTorch's mobile runtime): float32 and int8 ``.pte`` programs.

Lowering follows ExecuTorch's XNNPACK guide: ``torch.export`` → ``to_edge_transform_and_lower`` with
``XnnpackPartitioner`` → ``to_executorch``; int8 goes through pt2e (``torchao``'s ``prepare_pt2e`` /
``convert_pt2e`` with ExecuTorch's ``XNNPACKQuantizer``, symmetric per-channel) first. Programs run here
through ``executorch.runtime`` (its Python bindings on Linux). Anything not taken by the delegate would run
in the portable reference kernels (seconds per image), so lowering is refused unless every compute op is
delegated.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from mobilebone.backends.engine import Engine, to_tensor

# Ops that may stay outside the delegate: unpacking the delegate's outputs.
_GLUE_OPS = ("getitem", "executorch_call_delegate")


class DelegationError(RuntimeError):
    """Part of the graph was not taken by the XNNPACK delegate."""


def available() -> bool:
    """Whether ExecuTorch (with its XNNPACK backend) and torchao are installed."""
    return (
        importlib.util.find_spec("executorch") is not None and importlib.util.find_spec("torchao") is not None
    )


def undelegated_ops(edge: Any) -> list[str]:
    """Call targets of the lowered graph that are neither a delegate call nor output unpacking."""
    graph = edge.exported_program().graph_module.graph
    targets = [str(n.target) for n in graph.nodes if n.op == "call_function"]
    if not any("executorch_call_delegate" in t for t in targets):
        return targets or ["<no delegate call>"]
    return [t for t in targets if not any(g in t for g in _GLUE_OPS)]


def _lower(program: Any, path: Path) -> int:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    left = undelegated_ops(edge)
    if left:
        raise DelegationError(f"XNNPACK did not take {len(left)} op(s): {', '.join(sorted(set(left))[:5])}")
    graph = edge.exported_program().graph_module.graph
    delegates = sum(1 for n in graph.nodes if "executorch_call_delegate" in str(n.target))
    path.write_bytes(edge.to_executorch().buffer)
    return delegates


def _load(path: Path, threads: int) -> Any:
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from executorch.runtime import Runtime

    # The runtime's thread pool is process-wide and defaults to every core; match the other runtimes.
    _unsafe_reset_threadpool(threads)
    return Runtime.get().load_program(str(path)).load_method("forward")


def _engine(name: str, precision: str, path: Path, threads: int, delegates: int) -> Engine:
    import executorch

    method = _load(path, threads)

    def infer(batch: Tensor) -> Tensor:
        return to_tensor(method.execute([batch.contiguous()])[0])

    info = {"executorch": getattr(executorch, "__version__", "?"), "xnnpack_delegates": delegates}
    return Engine(name, precision, infer, artifacts=[path], info=info | {"threads": threads})


def build_fp32(model: nn.Module, x: Tensor, calibration: Tensor, threads: int, workdir: Path) -> Engine:
    """ExecuTorch float32, every op delegated to XNNPACK."""
    import torch

    path = workdir / "executorch-xnnpack.pte"
    delegates = _lower(torch.export.export(model, (x,)), path)
    return _engine("executorch-xnnpack", "fp32", path, threads, delegates)


def build_int8(model: nn.Module, x: Tensor, calibration: Tensor, threads: int, workdir: Path) -> Engine:
    """ExecuTorch int8: pt2e with the XNNPACK quantizer (symmetric, per-channel weights), then lowered."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    with torch.no_grad():
        for i in range(len(calibration)):
            prepared(calibration[i : i + 1])
    engine = lower_quantized(convert_pt2e(prepared), x, workdir / "executorch-xnnpack-int8.pte", threads)
    engine.info["calibration_images"] = len(calibration)
    return engine


def lower_quantized(
    converted: nn.Module, x: Tensor, path: Path, threads: int, *, name: str = "executorch-xnnpack-int8"
) -> Engine:
    """A pt2e-converted int8 model (``convert_pt2e``'s output) lowered to an XNNPACK ``.pte`` and loaded."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    delegates = _lower(torch.export.export(converted, (x,)), path)
    return _engine(name, "int8", path, threads, delegates)
