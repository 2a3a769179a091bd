"""Latency harness, environment capture, correlation study, resumable sweep and the ``bench`` CLI.

No timing is asserted: these tests check the statistics, the bookkeeping and the files, not the speed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from mobilebone import create_model
from mobilebone.analysis import (
    LatencyResult,
    available_runtimes,
    capture_environment,
    count_macs,
    count_params,
    cpu_features,
    measure_latency,
)
from mobilebone.analysis import latency as latency_module
from mobilebone.analysis import runtimes as runtimes_module
from mobilebone.analysis.correlation import latency_correlations, rank_correlation
from mobilebone.analysis.report import correlation_table, read_json
from mobilebone.analysis.runtimes import (
    CPU_RTOL,
    RUNTIMES,
    RuntimeMismatch,
    check_runtime,
    default_runtime,
)
from mobilebone.analysis.sweep import Sweep, SweepSettings
from mobilebone.analysis.zoo import ZooEntry, default_models, resolve_models, timm_available, zoo
from mobilebone.cli.common import resolve_runtimes
from mobilebone.cli.main import main
from mobilebone.timing import time_calls, time_interleaved

HAS_ORT = "onnxruntime" in available_runtimes()
HAS_CUDA = torch.cuda.is_available()
HAS_ORT_CUDA = HAS_CUDA and "onnxruntime-cuda" in available_runtimes()


def tiny_convnet() -> nn.Module:
    """A few-kFLOP convnet with BatchNorm: fast to build, export and time."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def tiny_entry(name: str, width: int = 8) -> ZooEntry:
    """A zoo entry for a tiny model (a stand-in for the real zoo in sweep tests)."""

    def build() -> nn.Module:
        torch.manual_seed(width)
        return nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )

    return ZooEntry(name, "test", "convnet", build)


# --- harness -------------------------------------------------------------------------------------------


def test_statistics_match_the_samples() -> None:
    samples = [3.0, 1.0, 2.0, 10.0, 4.0]
    result = LatencyResult("eager", samples, runs_requested=5)
    assert result.runs == 5
    assert result.min_ms == 1.0
    assert result.median_ms == 3.0
    assert result.mean_ms == pytest.approx(4.0)
    assert result.std_ms == pytest.approx(statistics.stdev(samples))
    assert result.p90_ms == pytest.approx(7.6)  # sorted 1,2,3,4,10: position 0.9·4 = 3.6 → 4 + 0.6·6
    data = result.to_dict()
    assert data["samples_ms"] == samples and data["min_ms"] == 1.0


def test_time_calls_counts_warmup_and_runs() -> None:
    calls = []
    samples = time_calls(lambda: calls.append(1), runs=7, warmup=3)
    assert len(calls) == 10 and len(samples) == 7 and all(s >= 0 for s in samples)
    with pytest.raises(ValueError, match="runs must be"):
        time_calls(lambda: None, runs=0, warmup=0)


def test_time_cap_stops_early_but_keeps_a_minimum() -> None:
    from mobilebone.timing import MIN_TIMED_RUNS

    # A cap already passed after the first run: exactly the minimum number of runs is done.
    samples = time_calls(lambda: None, runs=10_000_000, warmup=0, max_seconds=1e-9)
    assert len(samples) == MIN_TIMED_RUNS == 10


def test_interleaved_timing_alternates_and_times_each_call() -> None:
    import time

    order: list[str] = []
    calls = {
        "a": lambda: order.append("a"),
        "slow": lambda: (order.append("slow"), time.sleep(0.002)),
    }
    samples = time_interleaved(calls, runs=4, warmup=1)
    # Warm-up once each, then forward and reversed order on alternate runs (neither always goes first).
    assert order == ["a", "slow", "a", "slow", "slow", "a", "a", "slow", "slow", "a"]
    assert len(samples["a"]) == len(samples["slow"]) == 4
    assert min(samples["slow"]) >= 2.0 > max(samples["a"])  # each sample times its own call, in ms


def test_measure_latency_eager_keeps_raw_samples_and_environment() -> None:
    result = measure_latency(
        tiny_convnet(), runtime="eager", input_shape=(1, 3, 32, 32), runs=6, warmup=2, threads=1
    )
    assert result.runtime == "eager" and result.runs == 6 and len(result.samples_ms) == 6
    assert result.min_ms <= result.median_ms <= result.p90_ms <= max(result.samples_ms)
    assert result.environment["threads"] == 1
    assert result.environment["form"] == "deploy" and result.environment["runtime"] == "eager"


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
@pytest.mark.parametrize("deploy", [True, False])
def test_measure_latency_onnxruntime_records_its_parity_error(deploy: bool) -> None:
    result = measure_latency(
        tiny_convnet(),
        runtime="onnxruntime",
        input_shape=(2, 3, 32, 32),
        runs=4,
        warmup=1,
        threads=1,
        deploy=deploy,
    )
    assert result.runtime == "onnxruntime" and result.runs == 4
    assert result.input_shape == (2, 3, 32, 32)
    assert result.environment["form"] == ("deploy" if deploy else "train-time")
    error = result.info["parity_error"]
    # The measured number, recomputed: ORT on the timed input against eager, within the CPU tolerance.
    assert isinstance(error, float) and error <= CPU_RTOL
    assert result.info["parity_rtol"] == CPU_RTOL and result.info["intra_op_threads"] == 1


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
def test_onnxruntime_int8_runtime_is_quantized_and_checked() -> None:
    from mobilebone.analysis.runtimes import INT8_RTOL

    torch.manual_seed(0)
    model = create_model("mobileone_s0")
    result = measure_latency(
        model, runtime="onnxruntime-int8", input_shape=(1, 3, 64, 64), runs=3, warmup=1, threads=1
    )
    assert result.environment["precision"] == "int8" and result.info["provider"] == "CPUExecutionProvider"
    # Really int8 (fp32 would be within 1e-5), and still close to the fp32 model (a ceiling).
    assert 1e-4 < result.info["parity_error"] <= INT8_RTOL == result.info["parity_rtol"]


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
def test_wrong_int8_output_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    real_run = onnxruntime.InferenceSession.run
    monkeypatch.setattr(
        onnxruntime.InferenceSession,
        "run",
        lambda self, *a, **k: [np.asarray(out) * 2 for out in real_run(self, *a, **k)],
    )
    with pytest.raises(RuntimeMismatch, match=r"onnxruntime-int8 output differs from PyTorch eager"):
        measure_latency(
            tiny_convnet(), runtime="onnxruntime-int8", input_shape=(1, 3, 32, 32), runs=2, warmup=0
        )


@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler"
)
def test_torch_compile_runtime_really_compiles_and_matches_eager() -> None:
    torch._dynamo.reset()
    result = measure_latency(
        tiny_convnet(), runtime="compile", input_shape=(1, 3, 16, 16), runs=3, warmup=1, threads=1
    )
    assert result.runtime == "compile" and result.runs == 3
    assert result.info["compile_options"] == "inductor, freezing=True"
    assert result.info["parity_error"] <= CPU_RTOL == result.info["parity_rtol"]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # inductor really traced a graph


@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler"
)
def test_torch_compile_runtime_compiles_each_model_of_a_sweep(tmp_path: Path) -> None:
    """Past dynamo's per-code recompile limit a model silently runs eager; a sweep's models share their
    forward code (here nn.Sequential's), so each compile must start from a clean cache."""
    torch.compiler.reset()
    x = torch.randn(1, 3, 16, 16)
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    with torch._dynamo.config.patch(recompile_limit=1):
        with torch.inference_mode():
            torch.compile(tiny_convnet().eval(), backend="eager")(x)  # takes nn.Sequential.forward's one slot
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        prepared = runtimes_module._prepare_compile(other, x, 1, tmp_path)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > graphs  # compiled, not run eagerly
    assert prepared.info["parity_error"] <= CPU_RTOL


# --- the runtime table -----------------------------------------------------------------------------------


def test_adding_a_runtime_is_one_table_entry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobilebone.analysis.runtimes import Prepared, RuntimeSpec

    def prepare_doubled(model: nn.Module, x: torch.Tensor, threads: int, workdir: Path) -> Prepared:
        return Prepared(lambda: model(x), info={"note": "eager again"})

    spec = RuntimeSpec(
        "eager-again", "cpu", "fp32", "eager under another name", lambda: True, prepare_doubled, None
    )
    monkeypatch.setitem(RUNTIMES, spec.name, spec)
    assert spec.name in available_runtimes() and check_runtime(spec.name) == spec.name
    result = measure_latency(tiny_convnet(), runtime=spec.name, input_shape=(1, 3, 16, 16), runs=2, warmup=0)
    assert result.runtime == "eager-again" and result.info == {"note": "eager again"}
    for command in ("bench", "study"):
        with pytest.raises(SystemExit):
            main([command, *(["activations"] if command == "study" else []), "--help"])
        assert "eager-again=eagerunderanothername" in "".join(capsys.readouterr().out.split())


def test_adding_a_deploy_runtime_is_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry with a ``build`` is timed by bench (built, checked on x) and is a ``deploy`` candidate."""
    from mobilebone.analysis.runtimes import RuntimeSpec, deploy_runtimes
    from mobilebone.backends.engine import Engine
    from mobilebone.deploy.search import _resolve

    def build(
        model: nn.Module, x: torch.Tensor, calibration: torch.Tensor, threads: int, workdir: Path
    ) -> Engine:
        assert calibration.shape[1:] == x.shape[1:]  # int8 builders calibrate on images of x's size
        return Engine("eager-built", "fp32", lambda batch: model(batch), info={"built": True})

    spec = RuntimeSpec(
        "eager-built", "cpu", "fp32", "eager, built", lambda: True, None, CPU_RTOL, build=build, install="-"
    )
    monkeypatch.setitem(RUNTIMES, spec.name, spec)
    assert spec in deploy_runtimes() and spec in _resolve(None) and check_runtime(spec.name) == spec.name
    result = measure_latency(tiny_convnet(), runtime=spec.name, input_shape=(1, 3, 16, 16), runs=2, warmup=0)
    assert result.info["built"] and result.info["parity_error"] <= CPU_RTOL == result.info["parity_rtol"]

    def wrong(
        model: nn.Module, x: torch.Tensor, calibration: torch.Tensor, threads: int, workdir: Path
    ) -> Engine:
        return Engine("eager-built", "fp32", lambda batch: model(batch) + 1.0)

    monkeypatch.setitem(RUNTIMES, spec.name, dataclasses.replace(spec, build=wrong))
    with pytest.raises(RuntimeMismatch, match="eager-built output differs"):
        measure_latency(tiny_convnet(), runtime=spec.name, input_shape=(1, 3, 16, 16), runs=2, warmup=0)


def test_every_deploy_runtime_is_a_bench_runtime() -> None:
    """One table: deploy's candidates are exactly the CPU entries that build, each with an install hint."""
    from mobilebone.deploy import DEPLOY_RUNTIME_NAMES

    assert tuple(n for n, s in RUNTIMES.items() if s.device == "cpu" and s.build) == DEPLOY_RUNTIME_NAMES
    for name in ("onnxruntime", "onnxruntime-int8", "openvino", "openvino-int8", "executorch-xnnpack"):
        assert name in DEPLOY_RUNTIME_NAMES and RUNTIMES[name].install


@pytest.mark.parametrize("name", ["openvino-int8", "executorch-xnnpack"])
def test_cli_bench_times_a_deploy_runtime(name: str, tmp_path: Path) -> None:
    if not RUNTIMES[name].available():
        pytest.skip(f"{name} not installed here ({RUNTIMES[name].install})")
    out = tmp_path / "r"
    argv = [
        "bench",
        "--models",
        "mobileone_s0",
        "--runs",
        "2",
        "--warmup",
        "0",
        "--runtimes",
        f"eager,{name}",
    ]
    assert main([*argv, "--threads", "1", "--input-size", "32", "--out", str(out)]) == 0
    rows = read_json(out / "results.json")["rows"]
    (row,) = [r for r in rows if r["runtime"] == name]
    assert row["status"] == "ok" and row["runs"] == 2
    assert row["info"]["parity_error"] <= RUNTIMES[name].rtol


def test_cli_bench_unavailable_runtime_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(RUNTIMES, "litert", dataclasses.replace(RUNTIMES["litert"], available=lambda: False))
    assert main(["bench", "--runtimes", "eager,litert", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "runtime 'litert' is not available here" in err and len(err.strip().splitlines()) == 1


def test_the_help_of_every_command_comes_from_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["bench", "--help"], ["study", "blocks", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = "".join(capsys.readouterr().out.split())  # argparse re-wraps (also at hyphens)
        for spec in RUNTIMES.values():
            assert "".join(f"{spec.name} = {spec.help}".split()) in text, (argv, spec.name)


def _refuses_to_time(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every call of the timing loop: a runtime that fails its parity check must never reach it."""
    timed: list[int] = []
    real = latency_module.time_calls

    def spy(fn: Any, **kwargs: Any) -> list[float]:
        timed.append(1)
        return real(fn, **kwargs)

    monkeypatch.setattr(latency_module, "time_calls", spy)
    return timed


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
@pytest.mark.parametrize("deploy", [True, False])
def test_wrong_onnxruntime_output_is_refused_before_timing(
    deploy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime

    real_run = onnxruntime.InferenceSession.run

    def off_by_one_percent(self: Any, *args: Any, **kwargs: Any) -> Any:
        return [np.asarray(out) * 1.01 for out in real_run(self, *args, **kwargs)]

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", off_by_one_percent)
    timed = _refuses_to_time(monkeypatch)
    with pytest.raises(
        RuntimeMismatch, match=r"onnxruntime output differs from PyTorch eager \(max relative"
    ):
        measure_latency(
            tiny_convnet(), runtime="onnxruntime", input_shape=(1, 3, 32, 32), runs=3, warmup=1, deploy=deploy
        )
    assert timed == []


class _WrongCompile:
    """Stands in for ``torch.compile``: a "compiled" model whose outputs are 1 % off."""

    def __init__(self, model: nn.Module, **_: Any) -> None:
        self.model = model

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * 1.01


@pytest.mark.parametrize("deploy", [True, False])
def test_wrong_compile_output_is_refused_before_timing(deploy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", _WrongCompile)
    timed = _refuses_to_time(monkeypatch)
    with pytest.raises(RuntimeMismatch, match=r"compile output differs from PyTorch eager"):
        measure_latency(
            tiny_convnet(), runtime="compile", input_shape=(1, 3, 32, 32), runs=3, warmup=1, deploy=deploy
        )
    assert timed == []


@pytest.mark.parametrize("deploy", [True, False])
def test_a_wrong_runtime_becomes_an_error_row_without_samples(
    deploy: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, "compile", _WrongCompile)
    rows = Sweep(tmp_path, settings(runtimes=("compile",), deploy=deploy)).run([tiny_entry("a")])
    assert rows[0]["status"] == "error" and "samples_ms" not in rows[0]
    assert rows[0]["error"].startswith("RuntimeMismatch: compile output differs from PyTorch eager")


def test_measure_latency_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown runtime 'tpu'"):
        measure_latency(tiny_convnet(), runtime="tpu")
    with pytest.raises(ValueError, match="input_shape"):
        measure_latency(tiny_convnet(), runtime="eager", input_shape=(3, 32, 32))  # type: ignore[arg-type]
    assert check_runtime("auto") in available_runtimes()


def test_runtime_mismatch_is_a_value_error() -> None:
    # The CLI prints ValueErrors as one line; a failed parity check must be one.
    assert issubclass(RuntimeMismatch, ValueError)


class _ThreadRecorder(nn.Module):
    """A tiny model whose forward records ``torch.get_num_threads()`` (the closure survives deepcopy)."""

    def __init__(self, seen: list[int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.record = lambda: seen.append(torch.get_num_threads())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.record()
        return self.conv(x)


@pytest.mark.parametrize(("outside", "requested"), [(2, 1), (1, 3)])
def test_the_requested_thread_count_is_what_the_timed_forward_sees(outside: int, requested: int) -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(outside)
    try:
        seen: list[int] = []
        result = measure_latency(
            _ThreadRecorder(seen),
            runtime="eager",
            input_shape=(1, 3, 8, 8),
            runs=5,
            warmup=2,
            threads=requested,
        )
        assert seen == [requested] * 7  # every warm-up and timed forward
        assert result.environment["threads"] == requested and result.info["intra_op_threads"] == requested
        assert torch.get_num_threads() == outside  # restored afterwards
    finally:
        torch.set_num_threads(previous)


def test_a_sweep_times_at_its_thread_count(tmp_path: Path) -> None:
    seen: list[int] = []
    entry = ZooEntry("recorder", "test", "convnet", lambda: _ThreadRecorder(seen))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rows = Sweep(tmp_path, settings(threads=1, runs=4, warmup=1)).run([entry])
    finally:
        torch.set_num_threads(previous)
    assert rows[0]["status"] == "ok" and rows[0]["threads"] == 1
    assert seen[-5:] == [1] * 5  # warm-up + timed runs (the earlier call is the MAC count)


# --- runtimes: CPU default, GPU only when asked --------------------------------------------------------


def _core(name: str) -> bool:
    """Entries that need only torch, a GPU or ONNX Runtime (the other deploy runtimes need their own packages)."""
    return RUNTIMES[name].build is None or name.startswith("onnxruntime")


def _core_available() -> list[str]:
    return [n for n in available_runtimes() if _core(n)]


def _fake_machine(monkeypatch: pytest.MonkeyPatch, *, gpu: bool, providers: list[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(runtimes_module, "_ort_providers", lambda: providers)


def test_with_a_gpu_every_runtime_is_available_but_auto_stays_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_machine(monkeypatch, gpu=True, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert _core_available() == [n for n in RUNTIMES if _core(n)]
    assert default_runtime() == "onnxruntime" and check_runtime("auto") == "onnxruntime"
    assert check_runtime("cuda") == "cuda" and check_runtime("onnxruntime-cuda") == "onnxruntime-cuda"
    assert resolve_runtimes(["auto"]) == ("onnxruntime",)  # what plain `mobilebone bench` times
    assert resolve_runtimes(["cuda", "onnxruntime-cuda,auto"]) == ("cuda", "onnxruntime-cuda", "onnxruntime")


def test_without_a_gpu_the_gpu_runtimes_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_machine(monkeypatch, gpu=False, providers=["CPUExecutionProvider"])
    assert _core_available() == [
        "eager",
        "compile",
        "onnxruntime",
        "onnxruntime-int8",
        "onnxruntime-int8-tuned",
    ]
    for name in ("cuda", "onnxruntime-cuda"):
        with pytest.raises(ValueError, match=f"runtime '{name}' is not available here; available: eager"):
            check_runtime(name)
    _fake_machine(monkeypatch, gpu=True, providers=[])  # a GPU but no ONNX Runtime: auto is eager, not cuda
    assert _core_available() == ["eager", "compile", "cuda"] and default_runtime() == "eager"


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'")
def test_cuda_provider_listed_but_unusable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    if HAS_ORT_CUDA:
        pytest.skip("the CUDA provider works here")
    _fake_machine(monkeypatch, gpu=False, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(ValueError, match=r"could not enable CUDAExecutionProvider.*onnxruntime-gpu"):
        measure_latency(tiny_convnet(), runtime="onnxruntime-cuda", input_shape=(1, 3, 16, 16), runs=2)


def test_cli_list_names_auto_as_a_cpu_runtime(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_machine(monkeypatch, gpu=True, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert "auto = onnxruntime" in out and "cuda (PyTorch eager on the GPU" in out


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("deploy", [True, False])
def test_cuda_runtime_times_on_the_gpu(deploy: bool) -> None:
    result = measure_latency(
        tiny_convnet(), runtime="cuda", input_shape=(1, 3, 32, 32), runs=5, warmup=2, threads=1, deploy=deploy
    )
    assert result.runtime == "cuda" and result.runs == 5 and min(result.samples_ms) > 0
    assert result.environment["gpu"] == torch.cuda.get_device_name(0) == result.info["device"]
    assert isinstance(result.info["parity_error"], float)


@pytest.mark.skipif(not HAS_ORT_CUDA, reason="needs a CUDA GPU and onnxruntime-gpu")
@pytest.mark.parametrize("deploy", [True, False])
def test_onnxruntime_cuda_runtime_times_on_the_gpu(deploy: bool) -> None:
    result = measure_latency(
        tiny_convnet(),
        runtime="onnxruntime-cuda",
        input_shape=(1, 3, 32, 32),
        runs=5,
        warmup=2,
        threads=1,
        deploy=deploy,
    )
    assert result.runtime == "onnxruntime-cuda" and result.runs == 5
    assert result.info["provider"] == "CUDAExecutionProvider" and isinstance(
        result.info["parity_error"], float
    )


# --- environment ---------------------------------------------------------------------------------------


def test_environment_has_the_fields_a_result_needs() -> None:
    env = capture_environment(3, runtime="onnxruntime", precision="fp32", deploy=False)
    for key in (
        "cpu",
        "logical_cores",
        "usable_cores",
        "threads",
        "runtime",
        "precision",
        "form",
        "measured_at",
    ):
        assert key in env, key
    assert env["threads"] == 3 and env["runtime"] == "onnxruntime" and env["form"] == "train-time"
    assert torch.__version__.startswith(env["torch_version"])
    assert isinstance(env["cpu"], str) and env["cpu"]
    if hasattr(os, "getloadavg"):  # a shared host's contention, kept with every row
        assert len(env["load_average"]) == 3 and all(x >= 0 for x in env["load_average"])
    json.dumps(env)  # must be storable as is


def test_cpu_features_are_read_from_the_flags_line() -> None:
    """A VM can hide AMX from a Xeon that has it: the features come from the flags, not the CPU's name."""
    xeon_vm = (
        "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n"
    )
    assert cpu_features(xeon_vm) == ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"]
    amx = xeon_vm.replace("avx512_bf16", "avx512_bf16 amx_bf16 amx_tile amx_int8")
    assert cpu_features(amx)[-3:] == ["amx_tile", "amx_int8", "amx_bf16"]
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm bf16\n"
    assert cpu_features(arm) == ["asimd", "asimddp", "i8mm", "bf16"]
    env = capture_environment(1)
    assert env["cpu_features"] is None or isinstance(env["cpu_features"], list)
    assert env["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


# --- correlation ---------------------------------------------------------------------------------------


def test_rank_correlation_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.random(25)
    y = x + 0.5 * rng.random(25)
    y[3] = y[4]  # a tie
    for method, reference in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau)):
        result = rank_correlation(x, y, method=method, n_resamples=300)
        expected = reference(x, y)
        assert result.estimate == pytest.approx(float(expected.statistic))
        assert result.pvalue == pytest.approx(float(expected.pvalue))
        assert result.n == 25


def test_bootstrap_interval_contains_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    x = rng.random(20)
    y = x + rng.random(20)
    for method in ("spearman", "kendall"):
        a = rank_correlation(x, y, method=method, n_resamples=500, seed=3)
        b = rank_correlation(x, y, method=method, n_resamples=500, seed=3)
        assert a.ci_low <= a.estimate <= a.ci_high
        assert -1.0 <= a.ci_low < a.ci_high <= 1.0
        assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)


def test_perfect_and_degenerate_correlations() -> None:
    assert rank_correlation([1, 2, 3, 4, 5], [2, 4, 8, 16, 32], n_resamples=100).estimate == pytest.approx(
        1.0
    )
    assert rank_correlation([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], n_resamples=100).estimate == pytest.approx(-1.0)
    assert math.isnan(rank_correlation([1, 2], [1, 2]).estimate)


def test_too_few_models_print_not_applicable_instead_of_nan() -> None:
    two = rank_correlation([1, 2], [1, 2], method="kendall", x_name="macs")
    assert str(two) == "n/a (needs ≥ 3 models, have 2)" and not two.defined
    assert str(rank_correlation([1, 2, 3], [5, 5, 5])) == "n/a (all ranks tied)"
    table = correlation_table({"eager": [two]})
    assert "n/a (needs ≥ 3 models" in table and "nan" not in table


def test_latency_correlations_use_only_successful_rows() -> None:
    rows: list[dict[str, Any]] = [
        {"status": "ok", "min_ms": float(i), "macs": 10 * i, "params": 100 - i} for i in range(1, 8)
    ] + [{"status": "error", "min_ms": None, "macs": 5, "params": 5}]
    results = {(c.method, c.x): c for c in latency_correlations(rows, n_resamples=100)}
    assert results[("spearman", "macs")].estimate == pytest.approx(1.0)
    assert results[("spearman", "params")].estimate == pytest.approx(-1.0)
    assert results[("kendall", "macs")].n == 7


# --- zoo -----------------------------------------------------------------------------------------------


def test_zoo_has_ours_and_baselines() -> None:
    names = zoo()
    assert "mobileone_s0" in names and "torchvision/mobilenet_v2" in names
    if timm_available():  # the issue: at least 20 models, convnets and transformers
        assert len(names) >= 20
        assert any(e.kind == "transformer" for e in names.values())
    defaults = [e.name for e in default_models()]
    assert set(defaults) <= set(names) and {"mobileone_s0", "torchvision/resnet18"} <= set(defaults)
    assert len(defaults) == (20 if timm_available() else 15)  # what --help and the README say
    assert [e.name for e in resolve_models(["mobileone_s[01]"])] == ["mobileone_s0", "mobileone_s1"]
    with pytest.raises(ValueError, match="unknown model 'resnet9000'"):
        resolve_models(["resnet9000"])


@pytest.mark.parametrize("name", ["timm/repvit_m0_9", "timm/efficientvit_m0", "timm/ghostnetv3_100"])
def test_fresher_timm_peers_are_timed_in_deploy_form(name: str) -> None:
    """RepViT / EfficientViT-M fuse conv-BN (``fuse()``), GhostNetV3 its branches: the zoo times that form."""
    if not timm_available():
        pytest.skip("timm is not installed")
    torch.manual_seed(0)
    entry = zoo()[name]
    model = entry.build().eval()
    for module in model.modules():  # non-trivial BN statistics, so fusing has something to get right
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = model(x)
        deploy = entry.fuse(model)
        torch.testing.assert_close(deploy(x), expected, rtol=1e-4, atol=1e-4)
    count = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in deploy.parameters()) < count  # branches / BN folded away
    assert not any(hasattr(m, "fuse") for m in deploy.modules() if m is not deploy)


def test_unknown_model_suggests_the_prefixed_name() -> None:
    with pytest.raises(ValueError, match=r"did you mean torchvision/resnet18"):
        resolve_models(["resnet18"])
    with pytest.raises(
        ValueError, match=r"did you mean torchvision/mobilenet_v3_small, torchvision/mobilenet_v3_large"
    ):
        resolve_models(["mobilenet_v3"])


# --- sweep: persistence and resume --------------------------------------------------------------------


def settings(**overrides: Any) -> SweepSettings:
    values: dict[str, Any] = dict(runtimes=("eager",), threads=1, runs=3, warmup=1, input_size=32)
    values.update(overrides)
    return SweepSettings(**values)


def test_resume_skips_completed_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [tiny_entry("a", 4), tiny_entry("b", 8)]
    first = Sweep(tmp_path, settings())
    first.run(entries)
    assert [r["model"] for r in read_json(tmp_path / "results.json")["rows"]] == ["a", "b"]

    measured: list[str] = []
    import mobilebone.analysis.sweep as sweep_module

    real = sweep_module.measure_latency

    def spy(model: nn.Module, **kwargs: Any) -> LatencyResult:
        measured.append(str(kwargs["runtime"]))
        return real(model, **kwargs)

    monkeypatch.setattr(sweep_module, "measure_latency", spy)
    again = Sweep(tmp_path, settings(), resume=True)
    again.run([*entries, tiny_entry("c", 12)])
    assert measured == ["eager"]  # only "c"
    assert [r["model"] for r in again.rows] == ["a", "b", "c"]

    changed = Sweep(tmp_path, settings(runs=4), resume=True)  # different settings: nothing to reuse
    assert len(changed.pending(entries)) == 2


def test_interrupted_sweep_keeps_rows_written_so_far(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mobilebone.analysis.sweep as sweep_module

    real = sweep_module.measure_latency
    calls = 0

    def flaky(model: nn.Module, **kwargs: Any) -> LatencyResult:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt  # the user pressing Ctrl-C mid-sweep
        return real(model, **kwargs)

    monkeypatch.setattr(sweep_module, "measure_latency", flaky)
    entries = [tiny_entry("a", 4), tiny_entry("b", 8), tiny_entry("c", 12)]
    with pytest.raises(KeyboardInterrupt):
        Sweep(tmp_path, settings()).run(entries)
    rows = read_json(tmp_path / "results.json")["rows"]
    assert [r["model"] for r in rows] == ["a"] and rows[0]["status"] == "ok"
    assert len(rows[0]["samples_ms"]) == 3
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 2 and csv_lines[1].startswith("a,")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind

    monkeypatch.setattr(sweep_module, "measure_latency", real)
    resumed = Sweep(tmp_path, settings(), resume=True)
    assert [e.name for e, _ in resumed.pending(entries)] == ["b", "c"]


def test_a_failing_model_becomes_an_error_row(tmp_path: Path) -> None:
    def broken() -> nn.Module:
        raise RuntimeError("cannot build\nsecond line")

    sweep = Sweep(tmp_path, settings())
    rows = sweep.run([ZooEntry("broken", "test", "convnet", broken), tiny_entry("ok")])
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert rows[0]["error"] == "RuntimeError: cannot build"


def test_train_form_rows_count_the_train_time_form(tmp_path: Path) -> None:
    entry = zoo()["mobileone_s0"]
    train, fused = entry.build(), entry.deploy()
    for deploy, model, form in ((False, train, "train-time"), (True, fused, "deploy")):
        sweep = Sweep(tmp_path / form, settings(deploy=deploy, runs=2, warmup=0))
        row = sweep.run([entry])[0]
        sweep.finish()
        assert row["status"] == "ok" and row["form"] == form and row["complexity_form"] == form
        assert row["params"] == count_params(model) and row["macs"] == count_macs(model, 32).total
    assert count_params(train) > count_params(fused)  # the two forms really differ
    report = (tmp_path / "train-time" / "report.md").read_text()
    assert "counted on the form that was timed" in report and "train-time" in report


def test_rows_of_several_invocations_keep_their_own_settings(tmp_path: Path) -> None:
    Sweep(tmp_path, settings(threads=1)).run([tiny_entry("a")])
    second = Sweep(tmp_path, settings(threads=2), resume=True)
    second.run([tiny_entry("a")])
    second.finish()
    document = read_json(tmp_path / "results.json")
    assert "settings" not in document and "environment" not in document  # no misleading single block
    invocations = document["invocations"]
    assert [inv["settings"]["threads"] for inv in invocations] == [1, 2]
    assert [(r["threads"], r["invocation"], r["environment"]["threads"]) for r in document["rows"]] == [
        (1, 0, 1),
        (2, 1, 2),
    ]
    report = (tmp_path / "report.md").read_text()
    assert "## Invocations" in report and "1 threads" in report and "2 threads" in report


def test_resume_retries_failed_rows_and_keeps_those_of_other_models(tmp_path: Path) -> None:
    def broken() -> nn.Module:
        raise RuntimeError("cannot build")

    failing = [ZooEntry("x", "test", "convnet", broken), ZooEntry("y", "test", "convnet", broken)]
    Sweep(tmp_path, settings()).run(failing)
    assert [r["status"] for r in read_json(tmp_path / "results.json")["rows"]] == ["error", "error"]
    resumed = Sweep(tmp_path, settings(), resume=True)
    assert [e.name for e, _ in resumed.pending(failing)] == ["x", "y"]  # failures are measured again
    resumed.run([tiny_entry("x", 4)])  # a resume restricted to x (mobilebone bench --models x --resume)
    rows = {r["model"]: r["status"] for r in read_json(tmp_path / "results.json")["rows"]}
    assert rows == {"x": "ok", "y": "error"}  # x replaced, y's failure kept


class _ProcessDied(BaseException):
    """Stands for a runtime killing the process mid-measurement (a segfault): nothing after it runs."""


def test_a_measurement_the_process_died_in_is_retried_once_then_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mobilebone.analysis.sweep as sweep_module

    real = sweep_module.measure_latency

    def segfault(model: nn.Module, **kwargs: Any) -> LatencyResult:
        raise _ProcessDied

    entries = [tiny_entry("a", 4), tiny_entry("b", 8)]
    Sweep(tmp_path, settings()).run(entries[:1])
    monkeypatch.setattr(sweep_module, "measure_latency", segfault)
    with pytest.raises(_ProcessDied):
        Sweep(tmp_path, settings(), resume=True).run(entries)
    assert [r["status"] for r in read_json(tmp_path / "results.json")["rows"]] == ["ok", "running"]

    resumed = Sweep(tmp_path, settings(), resume=True)  # the next run finds b's death ...
    b = next(r for r in resumed.rows if r["model"] == "b")
    assert b["status"] == "crashed" and b["crashes"] == 1 and "process died" in b["error"]
    assert [e.name for e, _ in resumed.pending(entries)] == ["b"]  # ... and tries it once more
    with pytest.raises(_ProcessDied):
        resumed.run(entries)

    again = Sweep(tmp_path, settings(), resume=True)  # died twice: reported, no longer retried
    b = next(r for r in again.rows if r["model"] == "b")
    assert b["status"] == "crashed" and b["crashes"] == 2 and "no longer retried" in b["error"]
    assert again.pending(entries) == []
    monkeypatch.setattr(sweep_module, "measure_latency", real)
    again.run(entries)  # a sweep over the rest goes on
    again.finish()
    assert {r["model"]: r["status"] for r in read_json(tmp_path / "results.json")["rows"]} == {
        "a": "ok",
        "b": "crashed",
    }


def test_a_results_file_from_before_invocations_still_resumes(tmp_path: Path) -> None:
    Sweep(tmp_path, settings()).run([tiny_entry("a")])
    document = read_json(tmp_path / "results.json")
    old_settings = dict(document["invocations"][0]["settings"], runtimes=["eager"])
    old = {"tool": "mobilebone bench", "settings": old_settings, "environment": {"cpu": "old"}}
    old["rows"] = [
        {k: v for k, v in r.items() if k not in ("invocation", "complexity_form")} for r in document["rows"]
    ]
    (tmp_path / "results.json").write_text(json.dumps(old))
    resumed = Sweep(tmp_path, settings(), resume=True)
    assert resumed.pending([tiny_entry("a")]) == []  # the old row is reused
    resumed.run([tiny_entry("a"), tiny_entry("b")])
    resumed.finish()
    document = read_json(tmp_path / "results.json")
    assert document["invocations"][0]["settings"] == old_settings
    assert document["invocations"][0]["environment"] == {"cpu": "old"}
    assert [r["model"] for r in document["rows"]] == ["a", "b"]
    assert "Params and MACs are counted" in (tmp_path / "report.md").read_text()


def test_the_report_says_how_many_runs_the_time_cap_left(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, settings(runs=100_000, warmup=0, max_seconds=1e-9))
    rows = sweep.run([tiny_entry("a")])
    sweep.finish()
    assert rows[0]["runs"] == 10 and rows[0]["runs_requested"] == 100_000
    report = (tmp_path / "report.md").read_text()
    assert "capped at 1e-09 s" in report and "1 of the 1 measurements stopped at the time cap" in report
    assert "| runs done/requested |" in report and "| 10/100000 |" in report


# --- CLI -----------------------------------------------------------------------------------------------


def test_cli_end_to_end_writes_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    argv = [
        "bench",
        "--models",
        "mobileone_s0",
        "torchvision/mobilenet_v3_small",
        "--runs",
        "5",
        "--warmup",
        "1",
    ]
    argv += ["--runtimes", "eager", "--threads", "1", "--input-size", "64", "--out", str(out)]
    assert main(argv) == 0
    for name in ("results.csv", "results.json", "report.md", "latency_vs_macs.png", "latency_vs_params.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    document = read_json(out / "results.json")
    rows = document["rows"]
    assert {r["model"] for r in rows} == {"mobileone_s0", "torchvision/mobilenet_v3_small"}
    assert all(r["status"] == "ok" and r["runs"] == 5 and len(r["samples_ms"]) == 5 for r in rows)
    s0 = next(r for r in rows if r["model"] == "mobileone_s0")
    deploy = create_model("mobileone_s0", deploy=True)
    assert s0["params"] == sum(p.numel() for p in deploy.parameters())  # deploy-form count
    assert document["invocations"][-1]["environment"]["threads"] == 1
    assert all(r["environment"]["threads"] == 1 and r["complexity_form"] == "deploy" for r in rows)
    assert (out / "latency_vs_macs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "Spearman" in report and "mobileone_s0" in report and "| 5/5 |" in report
    # Two models have no rank correlation: say so instead of printing "+nan [+nan, +nan]".
    assert "n/a (needs ≥ 3 models" in report and "nan" not in report
    printed = capsys.readouterr().out
    assert "mobileone_s0" in printed and "n/a (needs ≥ 3 models" in printed and "nan" not in printed

    # --resume with the same settings measures nothing new and keeps the rows.
    assert main([*argv, "--resume"]) == 0
    assert "2 already measured" in capsys.readouterr().out
    assert len(read_json(out / "results.json")["rows"]) == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--runtimes", "tpu"], "unknown runtime 'tpu'"),
        (["--models", "mobileone_s9"], "unknown model 'mobileone_s9'"),
        (["--models", "nothing*"], "unknown model 'nothing*'"),
        (["--runs", "0"], "--runs must be >= 1"),
        (["--input-size", "8"], "--input-size must be between 32 and 2048, got 8"),
        (["--input-size", "-1"], "--input-size must be between 32 and 2048, got -1"),
        (["--input-size", "0"], "--input-size must be between 32 and 2048, got 0"),
        (["--input-size", "100000"], "got 100000 (one image would need about 440.0 GB"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
        (["--threads", "-2"], "--threads must be >= 1, got -2"),
        (["--threads", "1000"], "--threads 1000 is more than the"),
        (
            ["--models", "mobileone_s0,mobileone_s9"],
            "unknown model 'mobileone_s9' (did you mean mobileone_s4",
        ),
        (["--runtimes", "eager,tpu"], "unknown runtime 'tpu'; choose from auto, eager, compile"),
    ],
)
def test_bad_flags_are_one_line_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *flags, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing written for a bad command line


def test_out_under_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("a file")
    for argv in (["bench"], ["study", "blocks"]):
        assert main([*argv, "--out", str(tmp_path / "f" / "r")]) == 2
        err = capsys.readouterr().err
        assert (
            f"{str(tmp_path / 'f')!r} is a file, not a folder" in err and len(err.strip().splitlines()) == 1
        )


def test_threads_are_bounded_by_the_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from mobilebone.cli import common

    monkeypatch.setattr(common.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert common.check_threads(None) == 3 and common.check_threads(3) == 3 and common.check_threads(1) == 1
    with pytest.raises(
        ValueError, match=r"^--threads 4 is more than the 3 cores this process may use; use 1 to 3$"
    ):
        common.check_threads(4)


def test_models_accept_commas_and_spaces() -> None:
    names = [
        e.name for e in resolve_models(["mobileone_s0,torchvision/resnet18", "mobileone_s1", "mobileone_s0"])
    ]
    assert names == ["mobileone_s0", "torchvision/resnet18", "mobileone_s1"]


def test_cli_train_form_reports_train_time_params(tmp_path: Path) -> None:
    out = tmp_path / "train"
    argv = ["bench", "--models", "mobileone_s0", "--train-form", "--runs", "2", "--warmup", "0"]
    assert (
        main([*argv, "--runtimes", "eager", "--threads", "1", "--input-size", "32", "--out", str(out)]) == 0
    )
    (row,) = read_json(out / "results.json")["rows"]
    assert row["form"] == row["complexity_form"] == "train-time"
    assert row["params"] == count_params(create_model("mobileone_s0"))  # 5.29 M, not the fused 2.08 M
    assert "## eager, train-time" in (out / "report.md").read_text()


def test_bench_help_states_the_defaults_plainly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse re-wraps (also at hyphens): compare unspaced

    def has(phrase: str) -> bool:
        return "".join(phrase.split()) in text

    assert not has("default: the whole zoo") and has("default: our 10 models + 10 baselines")
    assert all(has(name) for name in RUNTIMES)
    assert (
        has("fastest fp32 CPU runtime") and has("--runtimes onnxruntime-cuda cuda") and has("onnxruntime-gpu")
    )
    assert has("capped at 1 s") and has("runs done/requested")


# --- the committed zoo results behind docs/benchmarks.md ----------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_docs_correlation_table_is_recomputed_from_the_committed_zoo_results() -> None:
    """Every estimate of docs/benchmarks.md's correlation table follows from benchmarks/results/zoo."""
    rows = [r for r in read_json(ROOT / "benchmarks/results/zoo/results.json")["rows"] if r["status"] == "ok"]
    lines = (ROOT / "docs" / "benchmarks.md").read_text().replace("−", "-").splitlines()
    order = (("spearman", "macs"), ("spearman", "params"), ("kendall", "macs"), ("kendall", "params"))
    for runtime, label in (("onnxruntime", "ONNX Runtime, 2 threads"), ("eager", "PyTorch eager, 1 thread")):
        group = [r for r in rows if r["runtime"] == runtime]
        small = [r for r in group if r["macs"] <= 1e9]
        for name, subset in ((f"all {len(group)}", group), ("≤ 1 GMAC (mobile-sized)", small)):
            # Only the estimates: they do not depend on the bootstrap, so few resamples keep this fast.
            by = {(c.method, c.x): c for c in latency_correlations(subset, n_resamples=20)}
            (line,) = [x for x in lines if x.startswith(f"| {name} | {label} | {len(subset)} |")]
            cells = [cell.strip().split(" [")[0] for cell in line.strip("|").split("|")[3:7]]
            assert cells == [f"{by[key].estimate:+.2f}" for key in order], (name, label)


def test_docs_fresh_sweep_correlations_are_the_committed_results() -> None:
    """docs/benchmarks.md's paragraph on the 46-model sweep quotes benchmarks/results/zoo_fresh."""
    rows = [
        r
        for r in read_json(ROOT / "benchmarks/results/zoo_fresh/results.json")["rows"]
        if r["status"] == "ok"
    ]
    text = " ".join((ROOT / "docs" / "benchmarks.md").read_text().split())

    def rho(runtime: str, x: str, small: bool) -> str:
        subset = [r for r in rows if r["runtime"] == runtime and (not small or r["macs"] <= 1e9)]
        by = {(c.method, c.x): c for c in latency_correlations(subset, n_resamples=20)}
        return f"{by[('spearman', x)].estimate:+.2f}"

    assert len({r["model"] for r in rows}) == 46
    ort, eager = "onnxruntime", "eager"
    assert f"MACs {rho(ort, 'macs', False)} (ONNX Runtime) and {rho(eager, 'macs', False)} (eager)" in text
    assert f"vs params {rho(ort, 'params', False)} and {rho(eager, 'params', False)}" in text
    assert f"{rho(ort, 'macs', True)} / {rho(eager, 'macs', True)} vs MACs" in text
    assert f"{rho(ort, 'params', True)} / {rho(eager, 'params', True)} vs params" in text


def test_docs_runtime_table_lists_every_entry() -> None:
    lines = (ROOT / "docs" / "benchmarks.md").read_text().splitlines()
    for spec in RUNTIMES.values():
        (row,) = [x for x in lines if x.startswith(f"| `{spec.name}`")]
        device = "CPU" if spec.device == "cpu" else "GPU"
        assert f"| {device} | {spec.precision} |" in row, row


def test_readme_bench_numbers_are_the_committed_results() -> None:
    """The README's bench paragraph quotes benchmarks/results (zoo and compare_timm), number for number."""
    import re

    readme = " ".join((ROOT / "README.md").read_text().split())
    rows = [r for r in read_json(ROOT / "benchmarks/results/zoo/results.json")["rows"] if r["status"] == "ok"]
    ort = [r for r in rows if r["runtime"] == "onnxruntime"]
    assert len(ort) == 27 and len({r["model"] for r in rows}) == 27  # the whole zoo, in both runtimes
    assert len([r for r in rows if r["runtime"] == "eager"]) == 27

    def spearman(subset: list[dict[str, Any]], x: str) -> str:
        by = {(c.method, c.x): c for c in latency_correlations(subset, n_resamples=20)}
        return f"{by[('spearman', x)].estimate:.2f}"

    small = [r for r in ort if r["macs"] <= 1e9]
    quoted = re.search(
        r"ρ\(latency, MACs\) = ([\d.]+), ρ\(latency, params\) = ([\d.]+) \(([\d.]+) among models ≤ 1 GMAC\)",
        readme,
    )
    assert quoted and quoted.groups() == (
        spearman(ort, "macs"),
        spearman(ort, "params"),
        spearman(small, "params"),
    )
    timm = json.loads((ROOT / "benchmarks/results/compare_timm.json").read_text())["architectures"]
    ratios = {a: v["ratios"] for a, v in timm.items()}
    speedups = [
        f"{1 / ratios[a]['ours ORT / timm eager (the timm default path)']['median']:.1f}×" for a in ratios
    ]
    assert f"MobileOne-S0 runs {speedups[0]} and MNv4-Conv-S {speedups[1]}" in readme
    same = [f"{ratios[a]['ours ORT / timm ORT']['median']:.3f}×" for a in ratios]
    assert f"(ours / timm = {same[0]}, {same[1]})" in readme


# --- info: the input-size validator shared with bench/export -----------------------------------------


@pytest.mark.parametrize("size", ["-1", "0", "100000"])
def test_info_refuses_sizes_outside_the_stated_range(size: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "mobileone_s0", "--input-size", size]) == 2
    err = capsys.readouterr().err
    assert f"mobilebone info: error: --input-size must be between 32 and 2048, got {size}" in err
    assert len(err.strip().splitlines()) == 1


def test_info_takes_commas_and_suggests_close_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "mobileone_s0,mobileone_s1", "--input-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "mobileone_s0" in out and "mobileone_s1" in out and "32x32" in out
    assert main(["info", "mobileone_s0,mobilone_s1"]) == 2
    assert "unknown model 'mobilone_s1' (did you mean mobileone_s1" in capsys.readouterr().err


def test_built_runtimes_take_mobile_mqa_on_its_export_friendly_path(tmp_path: Path) -> None:
    """bench builds ExecuTorch (and every built runtime) from the explicit-matmul attention path, as deploy
    does: XNNPACK does not take the ops fused attention decomposes into. The timed model is left as it was."""
    from mobilebone.layers.attention import MultiQueryAttention2d

    spec = RUNTIMES["executorch-xnnpack"]
    if not spec.available():
        pytest.skip(f"executorch-xnnpack not installed here ({spec.install})")
    torch.manual_seed(0)
    attention = MultiQueryAttention2d(16, 2, 8, 8, kv_stride=2)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), attention, nn.AdaptiveAvgPool2d(1), nn.Flatten()
    ).eval()
    prepared = runtimes_module._prepare_built(spec, model, torch.randn(1, 3, 16, 16), 1, tmp_path)
    assert prepared.info["parity_error"] <= CPU_RTOL
    assert attention.attn_impl == "sdpa"
