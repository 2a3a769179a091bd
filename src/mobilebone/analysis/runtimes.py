"""The runtimes a model can be timed in, as one typed table: each entry turns (model, input) into a call.

Every runtime except eager first checks that it computes what PyTorch eager computes (an exported or
compiled graph that is fast but wrong is not a result), then hands back the call to time. Adding a
runtime is adding one ``RuntimeSpec`` to ``RUNTIMES``: ``bench``, ``study``, ``export`` and ``deploy``
take their names, ``--help`` text and availability from this table. Entries with a ``build`` (a CPU
runtime that writes a deployable artifact, calibrated on images when int8) are ``deploy``'s candidates.

This module imports no heavy library at import time (the CLI builds its ``--help`` from it); torch,
numpy, onnxruntime and the ``mobilebone.backends`` builders are imported inside the functions that run a model.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from torch import Tensor, nn

    from mobilebone.backends.engine import Engine

from mobilebone.backends.errors import RuntimeMismatch

# Tolerances of the parity checks (max |a - b| / max |b|). fp32 graph rewrites reorder sums (~1e-6);
# cuDNN may use TF32 for convolutions by default, which is ~1e-3.
CPU_RTOL = 1e-4
CUDA_RTOL = 1e-2
# bfloat16 keeps 8 mantissa bits (~4e-3 per op, accumulated over ~50 layers).
BF16_RTOL = 5e-2
# int8 logits of a random-init model differ from fp32 by a few per cent of their range (uint8 activations
# carry ~2.5 significant digits, accumulated over every layer), more on small inputs; 0.5 still refuses a
# graph that is wrong rather than rounded. Whether int8 keeps the *decisions* is measured separately
# (``deploy``: top-1 agreement on held-out images).
INT8_RTOL = 0.5
# Which per-image statistic of that error ``deploy`` compares with an int8 candidate's tolerance: the median.
# On trained weights int8 rounding moves the logits of the few images whose logits are all small by more
# than half their size (MobileOne-S0 trained on the embedded set, 48 px: 0.6 on the worst of 200 images at
# 99.5 % top-1 agreement), while a wrong graph (a bad range, a skipped node) is wrong on most images. Top-1
# agreement judges the decisions; the median error still refuses a broken graph.
INT8_ERROR_STATISTIC: Literal["max", "median"] = "median"
# Images an int8 ``build`` calibrates on when timed by ``prepare`` (generated, of the input's size).
DEFAULT_CALIBRATION_IMAGES = 16


@dataclass
class Prepared:
    """A ready-to-time inference: ``run()`` does one forward pass on the fixed input and waits for it."""

    run: Callable[[], object]
    precision: str = "fp32"
    info: dict[str, Any] = field(default_factory=dict)


PrepareFn = Callable[["nn.Module", "Tensor", int, Path], Prepared]
Builder = Callable[["nn.Module", "Tensor", "Tensor", int, Path], "Engine"]


@dataclass(frozen=True)
class RuntimeSpec:
    """One runtime: where it runs, in which precision, how to build its timed call and how close it must be.

    ``prepare(model, x, threads, workdir)`` gets the model in the form to time (deploy or train-time, eval
    mode) and the fixed input, and returns the call to time after checking the runtime's output against
    PyTorch eager within ``rtol`` (``None``: this runtime *is* the reference, nothing to check). ``None``
    means: built with ``build`` and checked the same way. ``build(model, x, calibration, threads, workdir)``
    writes the deployable artifact (int8 ones calibrated on ``calibration``) and returns its ``Engine``;
    ``install`` says what makes the runtime available.
    """

    name: str
    device: str  # "cpu" or "cuda"
    precision: str  # "fp32", "bf16" or "int8"
    help: str
    available: Callable[[], bool]
    prepare: PrepareFn | None
    rtol: float | None
    build: Builder | None = None
    install: str = ""
    # The per-image statistic of the max relative logit error ``deploy`` compares with ``rtol``.
    error_statistic: Literal["max", "median"] = "max"


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

    # Models of one family share their ``forward`` code; dynamo keeps a few compiled graphs per code object
    # (``recompile_limit``, 8) and past that silently runs eager. A sweep compiles one model at a time, so
    # each compile starts from a clean cache and every "compile" row is a compiled model.
    torch.compiler.reset()
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


def export_friendly(model: nn.Module) -> nn.Module:
    """``model``, or where it has Mobile-MQA modules a copy on their explicit-matmul attention path: the form
    ``mobilebone deploy`` builds from (``prepare_for_export``), which every exporter takes; the fused
    ``scaled_dot_product_attention`` decomposes into ops XNNPACK does not take. The original is unchanged."""
    import copy

    from mobilebone.layers.attention import MultiQueryAttention2d, set_attention_impl

    if not any(isinstance(m, MultiQueryAttention2d) for m in model.modules()):
        return model
    friendly = copy.deepcopy(model)
    set_attention_impl(friendly, "matmul")
    return friendly


def _prepare_built(spec: RuntimeSpec, model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """Build ``spec``'s artifact (int8: calibrated on generated images of ``x``'s size), check it on ``x``, time it."""
    from mobilebone.export.calibration import generated_images

    assert spec.build is not None
    size = (int(x.shape[-2]), int(x.shape[-1]))
    calibration = generated_images(DEFAULT_CALIBRATION_IMAGES, {}, size, seed=1)
    engine = spec.build(export_friendly(model), x, calibration, threads, workdir)
    info = dict(engine.info) | _parity(spec, engine.infer(x), eager_output(model, x))
    return Prepared(lambda: engine.infer(x), precision=spec.precision, info=info)


def _deploy(module: str, function: str) -> Any:
    """``mobilebone.backends.<module>.<function>``, imported on first call (it imports torch and the runtime)."""

    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(f"mobilebone.backends.{module}"), function)(*args)

    call.__doc__ = f"mobilebone.backends.{module}.{function}, imported on use."
    return call


def _installed(*modules: str) -> Callable[[], bool]:
    """Availability as "these packages are importable" (no import needed to know)."""
    return lambda: all(importlib.util.find_spec(m) is not None for m in modules)


_DEPLOY_EXTRA = "pip install 'mobilebone[deploy]'"

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
            build=_deploy("onnxruntime", "build_fp32"),
            install="pip install onnxruntime",
        ),
        RuntimeSpec(
            "onnxruntime-int8",
            "cpu",
            "int8",
            "ONNX Runtime, CPU, static int8 (the `export --int8` recipe, calibrated on generated images)",
            _ort_cpu,
            _prepare_ort_int8,
            INT8_RTOL,
            build=_deploy("onnxruntime", "build_int8"),
            install="pip install onnxruntime",
            error_statistic=INT8_ERROR_STATISTIC,
        ),
        RuntimeSpec(
            "onnxruntime-int8-tuned",
            "cpu",
            "int8",
            "ONNX Runtime int8, calibration method chosen and the most sensitive layers kept float32",
            _ort_cpu,
            None,
            INT8_RTOL,
            build=_deploy("onnxruntime", "build_int8_tuned"),
            install="pip install onnxruntime",
            error_statistic=INT8_ERROR_STATISTIC,
        ),
        RuntimeSpec(
            "openvino",
            "cpu",
            "fp32",
            "OpenVINO, float32 (INFERENCE_PRECISION_HINT=f32)",
            _installed("openvino"),
            None,
            CPU_RTOL,
            build=_deploy("openvino", "build_f32"),
            install=_DEPLOY_EXTRA,
        ),
        RuntimeSpec(
            "openvino-bf16",
            "cpu",
            "bf16",
            "OpenVINO, bfloat16 (its silent default on CPUs with bf16 units; only where the CPU has them)",
            _deploy("openvino", "bf16_available"),
            None,
            BF16_RTOL,
            build=_deploy("openvino", "build_bf16"),
            install="a CPU with AMX or AVX-512 BF16",
        ),
        RuntimeSpec(
            "openvino-int8",
            "cpu",
            "int8",
            "OpenVINO int8, quantized by NNCF (PERFORMANCE preset)",
            _installed("openvino", "nncf"),
            None,
            INT8_RTOL,
            build=_deploy("openvino", "build_int8"),
            install=_DEPLOY_EXTRA,
            error_statistic=INT8_ERROR_STATISTIC,
        ),
        RuntimeSpec(
            "executorch-xnnpack",
            "cpu",
            "fp32",
            "ExecuTorch .pte, every op delegated to XNNPACK, float32",
            _installed("executorch", "torchao"),
            None,
            CPU_RTOL,
            build=_deploy("executorch", "build_fp32"),
            install=_DEPLOY_EXTRA,
        ),
        RuntimeSpec(
            "executorch-xnnpack-int8",
            "cpu",
            "int8",
            "ExecuTorch .pte, XNNPACK delegate, int8 (pt2e with XNNPACKQuantizer, per-channel)",
            _installed("executorch", "torchao"),
            None,
            INT8_RTOL,
            build=_deploy("executorch", "build_int8"),
            install=_DEPLOY_EXTRA,
            error_statistic=INT8_ERROR_STATISTIC,
        ),
        RuntimeSpec(
            "litert",
            "cpu",
            "fp32",
            "LiteRT (TFLite) via litert-torch, float32, XNNPACK delegate",
            _installed("litert_torch", "ai_edge_litert"),
            None,
            CPU_RTOL,
            build=_deploy("litert", "build_fp32"),
            install="pip install 'mobilebone[litert]' (own venv)",
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


def deploy_runtimes() -> list[RuntimeSpec]:
    """``deploy``'s candidates, in table order: the CPU entries that build a deployable artifact."""
    return [spec for spec in RUNTIMES.values() if spec.device == "cpu" and spec.build is not None]


def get_runtime(name: str) -> RuntimeSpec:
    """The entry called ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}")
    return RUNTIMES[name]


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


def prepare(runtime: str | RuntimeSpec, model: nn.Module, x: Tensor, threads: int, workdir: Path) -> Prepared:
    """Build the timed, checked call for ``runtime`` (a name from the table, see ``check_runtime``, or an entry)."""
    if isinstance(runtime, str):
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; choose from {AUTO}, {', '.join(RUNTIMES)}")
        runtime = RUNTIMES[runtime]
    spec = runtime
    if spec.prepare is not None:
        prepared = spec.prepare(model, x, threads, workdir)
    else:
        prepared = _prepare_built(spec, model, x, threads, workdir)
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
