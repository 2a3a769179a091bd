"""The runtimes a model can be timed in: each turns (model, input) into a zero-argument inference call.

Every runtime except eager first checks that it computes what PyTorch eager computes (an exported or
compiled graph that is fast but wrong is not a result), then hands back the call to time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mobilebone.testing import max_relative_error

# Tolerances of the parity checks (max |a - b| / max |b|). fp32 graph rewrites reorder sums (~1e-6);
# cuDNN may use TF32 for convolutions by default, which is ~1e-3.
CPU_RTOL = 1e-4
CUDA_RTOL = 1e-2

RUNTIMES = ("eager", "compile", "onnxruntime", "onnxruntime-cuda", "cuda")
RUNTIME_HELP = {
    "eager": "PyTorch eager on CPU (torch.inference_mode)",
    "compile": "torch.compile, inductor with freezing=True, on CPU (first compile takes ~30 s)",
    "onnxruntime": "ONNX Runtime, CPU execution provider (exported with mobilebone.export.onnx)",
    "onnxruntime-cuda": "ONNX Runtime, CUDA execution provider (needs the onnxruntime-gpu package)",
    "cuda": "PyTorch eager on the GPU (synchronized after every run)",
}


class RuntimeMismatch(ValueError):
    """A runtime's output differs from PyTorch eager's beyond tolerance, so its timing is not reported."""


@dataclass
class Prepared:
    """A ready-to-time inference: ``run()`` does one forward pass on the fixed input and waits for it."""

    run: Callable[[], object]
    precision: str = "fp32"
    info: dict[str, Any] = field(default_factory=dict)


def _ort_providers() -> list[str]:
    if importlib.util.find_spec("onnxruntime") is None:
        return []
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def available_runtimes() -> list[str]:
    """Runtimes usable here, in ``RUNTIMES`` order (``compile`` needs a C++ compiler at first call)."""
    names = ["eager", "compile"]
    providers = _ort_providers()
    if "CPUExecutionProvider" in providers:
        names.append("onnxruntime")
    if "CUDAExecutionProvider" in providers:
        names.append("onnxruntime-cuda")
    if torch.cuda.is_available():
        names.append("cuda")
    return [n for n in RUNTIMES if n in names]


def default_runtime() -> str:
    """What ``auto`` means: the fastest CPU runtime without a long compile (ONNX Runtime, else eager).

    Never a GPU runtime, even with a GPU present: plain ``mobilebone bench`` measures the local CPU
    (issue 5); ``cuda`` and ``onnxruntime-cuda`` are timed only when asked for by name.
    """
    return "onnxruntime" if "onnxruntime" in available_runtimes() else "eager"


def check_runtime(name: str) -> str:
    """Resolve ``auto`` and reject unknown or unavailable runtimes with a one-line error."""
    if name == "auto":
        return default_runtime()
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; choose from auto, {', '.join(RUNTIMES)}")
    if name not in available_runtimes():
        raise ValueError(
            f"runtime {name!r} is not available here; available: {', '.join(available_runtimes())}"
        )
    return name


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring the previous setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.inference_mode()
def eager_output(model: nn.Module, x: Tensor) -> Tensor:
    """The reference: PyTorch eager on CPU."""
    return model(x)


def _check(runtime: str, actual: Tensor, expected: Tensor, rtol: float) -> float:
    error = max_relative_error(actual.detach().float().cpu(), expected.detach().float().cpu())
    if not error <= rtol:
        raise RuntimeMismatch(
            f"{runtime} output differs from PyTorch eager (max relative error {error:.1e} > {rtol:.0e})"
        )
    return error


def prepare_eager(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """PyTorch eager: the path every PyTorch user starts from."""

    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return Prepared(run, info={"intra_op_threads": torch.get_num_threads()})


def prepare_compile(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """``torch.compile`` (inductor); ``freezing=True`` folds weights into constants, which is what makes CPU fast."""
    compiled = torch.compile(model, options={"freezing": True})
    expected = eager_output(model, x)

    def run() -> object:
        # freezing applies only under no_grad/inference (TOOLING.md); inference_mode satisfies it.
        with torch.inference_mode():
            return compiled(x)

    error = _check("compile", run(), expected, CPU_RTOL)  # type: ignore[arg-type]
    return Prepared(
        run,
        info={
            "compile_options": "inductor, freezing=True",
            "intra_op_threads": torch.get_num_threads(),
            "parity_error": error,
            "parity_rtol": CPU_RTOL,
        },
    )


def _write_model_onnx(model: nn.Module, x: Tensor, path: Path, deploy: bool) -> None:
    """Export ``model`` for input ``x`` (static shape, opset 17, legacy exporter)."""
    from mobilebone.export.onnx import to_onnx, write_onnx

    if deploy:
        # to_onnx reparameterizes a copy and checks the graph (no BatchNorm left, one Conv node per deploy
        # conv); parity is checked by the caller on the very session that is timed.
        to_onnx(model, path, input_size=(x.shape[-2], x.shape[-1]), batch_size=x.shape[0], verify=False)
    else:
        # The train-time form must keep its branches, so it bypasses to_onnx (which always fuses).
        write_onnx(model, x, path, opset=17, dynamic_batch=False)


def _ort_prepare(
    model: nn.Module, x: Tensor, threads: int, workdir: Path, deploy: bool, provider: str
) -> Prepared:
    import numpy as np
    import onnxruntime as ort

    runtime, rtol = (
        ("onnxruntime", CPU_RTOL) if provider == "CPUExecutionProvider" else ("onnxruntime-cuda", CUDA_RTOL)
    )
    path = workdir / "model.onnx"
    _write_model_onnx(model, x, path, deploy)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=[provider])
    if provider not in session.get_providers():
        # ORT silently falls back to the CPU when a provider cannot load (e.g. CUDA libraries missing).
        raise ValueError(
            f"ONNX Runtime could not enable {provider} (session uses {', '.join(session.get_providers())}); "
            "the CUDA provider needs the onnxruntime-gpu package built for this CUDA version"
        )
    feed = {session.get_inputs()[0].name: x.numpy()}

    def run() -> object:
        return session.run(None, feed)

    # The check runs the session that is timed, on the timed input: a fast but wrong graph is no result.
    output = torch.from_numpy(np.asarray(session.run(None, feed)[0]))
    error = _check(runtime, output, eager_output(model, x), rtol)
    return Prepared(
        run,
        info={
            "provider": provider,
            "graph_optimization": "ORT_ENABLE_ALL",
            "intra_op_threads": options.intra_op_num_threads,
            "parity_error": error,
            "parity_rtol": rtol,
        },
    )


def prepare_cuda(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """PyTorch eager on the GPU; every run waits for the device so a sample is a whole inference."""
    import copy

    expected = eager_output(model, x)
    gpu_model = copy.deepcopy(model).cuda()
    gpu_x = x.cuda()

    def run() -> object:
        with torch.inference_mode():
            out = gpu_model(gpu_x)
        torch.cuda.synchronize()
        return out

    error = _check("cuda", run(), expected, CUDA_RTOL)  # type: ignore[arg-type]
    return Prepared(
        run,
        info={"device": torch.cuda.get_device_name(0), "parity_error": error, "parity_rtol": CUDA_RTOL},
    )


def prepare(runtime: str, model: nn.Module, x: Tensor, threads: int, workdir: Path, deploy: bool) -> Prepared:
    """Build the timed call for ``runtime`` (already resolved, see ``check_runtime``)."""
    if runtime == "eager":
        return prepare_eager(model, x, threads, workdir)
    if runtime == "compile":
        return prepare_compile(model, x, threads, workdir)
    if runtime == "onnxruntime":
        return _ort_prepare(model, x, threads, workdir, deploy, "CPUExecutionProvider")
    if runtime == "onnxruntime-cuda":
        return _ort_prepare(model, x, threads, workdir, deploy, "CUDAExecutionProvider")
    if runtime == "cuda":
        return prepare_cuda(model, x, threads, workdir)
    raise ValueError(f"unknown runtime {runtime!r}; choose from auto, {', '.join(RUNTIMES)}")


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder for exported files, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="mobilebone-bench-") as name:
        yield Path(name)
