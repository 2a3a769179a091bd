"""The runtimes a model can be timed in, as one typed table: each entry turns (model, input) into a call.

Every runtime except eager first checks that it computes what PyTorch eager computes (an exported or
compiled graph that is fast but wrong is not a result), then hands back the call to time. Adding a
runtime is adding one ``RuntimeSpec`` to ``RUNTIMES``: ``bench``, ``study`` and ``export`` take their
names, ``--help`` text and availability from this table.

This module imports no heavy library at import time (the CLI builds its ``--help`` from it); torch,
numpy and onnxruntime are imported inside the functions that run a model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn

# Tolerances of the parity checks (max |a - b| / max |b|). fp32 graph rewrites reorder sums (~1e-6);
# cuDNN may use TF32 for convolutions by default, which is ~1e-3.
CPU_RTOL = 1e-4
CUDA_RTOL = 1e-2
# int8 logits of a random-init model on a random input differ from fp32 by a few per cent of their range
# (uint8 activations carry ~2.5 significant digits, accumulated over every layer); 0.25 still refuses a
# graph that is wrong rather than rounded (a wrong graph is off by O(1)).
INT8_RTOL = 0.25


class RuntimeMismatch(ValueError):
    """A runtime's output differs from PyTorch eager's beyond tolerance, so its timing is not reported."""


@dataclass
class Prepared:
    """A ready-to-time inference: ``run()`` does one forward pass on the fixed input and waits for it."""

    run: Callable[[], object]
    precision: str = "fp32"
    info: dict[str, Any] = field(default_factory=dict)


PrepareFn = Callable[["nn.Module", "Tensor", int, Path], Prepared]


@dataclass(frozen=True)
class RuntimeSpec:
    """One runtime: where it runs, in which precision, how to build its timed call and how close it must be.

    ``prepare(model, x, threads, workdir)`` gets the model in the form to time (deploy or train-time, eval
    mode) and the fixed input, and returns the call to time after checking the runtime's output against
    PyTorch eager within ``rtol`` (``None``: this runtime *is* the reference, nothing to check).
    """

    name: str
    device: str  # "cpu" or "cuda"
    precision: str  # "fp32" or "int8"
    help: str
    available: Callable[[], bool]
    prepare: PrepareFn
    rtol: float | None


# --- availability ---------------------------------------------------------------------------------------


def _ort_providers() -> list[str]:
    if importlib.util.find_spec("onnxruntime") is None:
        return []
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _always() -> bool:
    return True


def _ort_cpu() -> bool:
    return "CPUExecutionProvider" in _ort_providers()


def _ort_cuda() -> bool:
    return "CUDAExecutionProvider" in _ort_providers()


# --- checks ---------------------------------------------------------------------------------------------


def eager_output(model: nn.Module, x: Tensor) -> Tensor:
    """The reference: PyTorch eager on CPU."""
    import torch

    with torch.inference_mode():
        return model(x)  # type: ignore[no-any-return]


def _check(runtime: str, actual: Any, expected: Tensor, rtol: float) -> float:
    import torch

    from mobilebone.numerics import max_relative_error

    got = torch.as_tensor(actual).detach().float().cpu()
    error = max_relative_error(got, expected.detach().float().cpu())
    if not error <= rtol:
        raise RuntimeMismatch(
            f"{runtime} output differs from PyTorch eager (max relative error {error:.1e} > {rtol:.0e})"
        )
    return error


def _parity(spec: RuntimeSpec, actual: Any, expected: Tensor) -> dict[str, Any]:
    """Check ``actual`` against eager within the spec's tolerance; the info fields that record it."""
    assert spec.rtol is not None
    return {"parity_error": _check(spec.name, actual, expected, spec.rtol), "parity_rtol": spec.rtol}


# --- prepare functions ------------------------------------------------------------------------------------


def _prepare_eager(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """PyTorch eager: the path every PyTorch user starts from."""
    import torch

    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return Prepared(run, info={"intra_op_threads": torch.get_num_threads()})


def _prepare_compile(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """``torch.compile`` (inductor); ``freezing=True`` folds weights into constants, which is what makes CPU fast."""
    import torch

    compiled = torch.compile(model, options={"freezing": True})
    expected = eager_output(model, x)

    def run() -> object:
        # Inductor freezes weights only for graphs run without autograd; deploy provides that.
        with torch.inference_mode():
            return compiled(x)

    info = {"compile_options": "inductor, freezing=True", "intra_op_threads": torch.get_num_threads()}
    return Prepared(run, info=info | _parity(RUNTIMES["compile"], run(), expected))


def _ort_session(path: Path, threads: int, provider: str) -> Any:
    import onnxruntime as ort

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
    return session


def _ort_timed(
    spec: RuntimeSpec, model: nn.Module, x: Tensor, path: Path, threads: int, provider: str
) -> Prepared:
    """Time ``path`` in an ORT session; the check runs that very session on the timed input."""
    import numpy as np

    session = _ort_session(path, threads, provider)
    feed = {session.get_inputs()[0].name: x.numpy()}

    def run() -> object:
        return session.run(None, feed)

    output = np.asarray(session.run(None, feed)[0])
    info = {
        "provider": provider,
        "graph_optimization": "ORT_ENABLE_ALL",
        "intra_op_threads": threads,
    }
    return Prepared(run, precision=spec.precision, info=info | _parity(spec, output, eager_output(model, x)))


def _write_onnx(model: nn.Module, x: Tensor, path: Path) -> Path:
    """Export ``model`` as given (already in the form to time) for input ``x``: static shape, opset 17."""
    from mobilebone.export.onnx import write_onnx

    write_onnx(model, x, path, opset=17, dynamic_batch=False)
    return path


def _prepare_ort(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    path = _write_onnx(model, x, workdir / "model.onnx")
    return _ort_timed(RUNTIMES["onnxruntime"], model, x, path, threads, "CPUExecutionProvider")


def _prepare_ort_cuda(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    path = _write_onnx(model, x, workdir / "model.onnx")
    return _ort_timed(RUNTIMES["onnxruntime-cuda"], model, x, path, threads, "CUDAExecutionProvider")


def _prepare_ort_int8(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """The ``export --int8`` recipe (static QDQ, per-channel, MinMax on generated images), then ORT CPU."""
    from mobilebone.export.quantize import quantize_onnx

    fp32 = _write_onnx(model, x, workdir / "fp32.onnx")
    int8 = workdir / "int8.onnx"
    # No agreement floor here: the parity check below is the gate, on the timed input itself.
    quantize_onnx(fp32, int8, num_eval=0, min_agreement=None, threads=threads)
    prepared = _ort_timed(RUNTIMES["onnxruntime-int8"], model, x, int8, threads, "CPUExecutionProvider")
    prepared.info["quantization"] = "static QDQ, per-channel int8 weights, uint8 activations, MinMax"
    return prepared


def _prepare_cuda(model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """PyTorch eager on the GPU; every run waits for the device so a sample is a whole inference."""
    import copy

    import torch

    expected = eager_output(model, x)
    gpu_model = copy.deepcopy(model).cuda()
    gpu_x = x.cuda()

    def run() -> object:
        with torch.inference_mode():
            out = gpu_model(gpu_x)
        torch.cuda.synchronize()
        return out

    info = {"device": torch.cuda.get_device_name(0)}
    return Prepared(run, info=info | _parity(RUNTIMES["cuda"], run(), expected))


# --- the table --------------------------------------------------------------------------------------------

RUNTIMES: dict[str, RuntimeSpec] = {
    spec.name: spec
    for spec in (
        RuntimeSpec(
            "eager",
            "cpu",
            "fp32",
            "PyTorch eager on CPU (torch.inference_mode)",
            _always,
            _prepare_eager,
            None,
        ),
        RuntimeSpec(
            "compile",
            "cpu",
            "fp32",
            "torch.compile, inductor with freezing=True, on CPU (needs a C++ compiler; first compile takes ~30 s)",
            _always,
            _prepare_compile,
            CPU_RTOL,
        ),
        RuntimeSpec(
            "onnxruntime",
            "cpu",
            "fp32",
            "ONNX Runtime, CPU execution provider (exported with mobilebone.export.onnx)",
            _ort_cpu,
            _prepare_ort,
            CPU_RTOL,
        ),
        RuntimeSpec(
            "onnxruntime-int8",
            "cpu",
            "int8",
            "ONNX Runtime, CPU, static int8 (the `export --int8` recipe, calibrated on generated images)",
            _ort_cpu,
            _prepare_ort_int8,
            INT8_RTOL,
        ),
        RuntimeSpec(
            "onnxruntime-cuda",
            "cuda",
            "fp32",
            "ONNX Runtime, CUDA execution provider (needs the onnxruntime-gpu package)",
            _ort_cuda,
            _prepare_ort_cuda,
            CUDA_RTOL,
        ),
        RuntimeSpec(
            "cuda",
            "cuda",
            "fp32",
            "PyTorch eager on the GPU (synchronized after every run)",
            _has_cuda,
            _prepare_cuda,
            CUDA_RTOL,
        ),
    )
}
AUTO = "auto"


def available_runtimes() -> list[str]:
    """Runtimes usable here, in table order (``compile`` needs a C++ compiler at first call)."""
    return [spec.name for spec in RUNTIMES.values() if spec.available()]


def default_runtime() -> str:
    """What ``auto`` means: the fastest fp32 CPU runtime without a long compile (ONNX Runtime, else eager).

    Never a GPU runtime, even with a GPU present: plain ``mobilebone bench`` measures the local CPU;
    GPU runtimes are timed only when asked for by name.
    """
    return "onnxruntime" if "onnxruntime" in available_runtimes() else "eager"


def check_runtime(name: str) -> str:
    """Resolve ``auto`` and reject unknown or unavailable runtimes with a one-line error."""
    if name == AUTO:
        return default_runtime()
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; choose from {AUTO}, {', '.join(RUNTIMES)}")
    available = available_runtimes()
    if name not in available:
        raise ValueError(f"runtime {name!r} is not available here; available: {', '.join(available)}")
    return name


def runtimes_help(default: str = AUTO) -> str:
    """``--runtimes`` help text, generated from the table (names, what each is, GPU only when named)."""
    entries = "; ".join(f"{spec.name} = {spec.help}" for spec in RUNTIMES.values())
    gpu = " ".join(spec.name for spec in RUNTIMES.values() if spec.device != "cpu")
    return (
        f"space- or comma-separated: {AUTO} (the fastest fp32 CPU runtime: onnxruntime if installed, else "
        f"eager); {entries}. GPU runtimes are timed only when named (e.g. --runtimes {gpu}). "
        f"Default: {default}"
    )


def prepare(runtime: str, model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """Build the timed call for ``runtime`` (a name from the table; see ``check_runtime``)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose from {AUTO}, {', '.join(RUNTIMES)}")
    spec = RUNTIMES[runtime]
    prepared = spec.prepare(model, x, threads, workdir)
    prepared.precision = spec.precision
    return prepared


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring the previous setting afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder for exported files, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="mobilebone-bench-") as name:
        yield Path(name)
