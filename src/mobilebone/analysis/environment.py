"""What a latency number depends on, recorded beside it: CPU, cores, threads, library versions, runtime."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any

# Libraries whose versions change latency (kernels, graph optimizers); recorded when installed.
LIBRARIES = ("mobilebone", "torch", "torchvision", "timm", "onnx", "onnxruntime", "numpy")


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS), else ``platform``'s guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "Hardware", "Processor")) and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, check=False
            )
            if out.stdout.strip():
                return out.stdout.strip()
        except OSError:
            pass
    return platform.processor() or platform.machine() or "unknown"


# Instruction-set extensions that decide which kernels a runtime picks (x86: AVX-512 VNNI/BF16 int8 and
# bfloat16 paths, AMX tiles; Arm: dot product, int8 matmul, bf16). A virtual machine may hide some of the
# host CPU's, so the model name alone does not say which kernels ran.
KERNEL_FEATURES = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
)


def cpu_features(cpuinfo: str | None = None) -> list[str] | None:
    """The ``KERNEL_FEATURES`` this CPU reports to the OS (``/proc/cpuinfo`` flags), in that order.

    None where the OS has no ``/proc/cpuinfo`` (macOS, Windows): unknown, not "none".
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")) and ":" in line:
            flags.update(line.split(":", 1)[1].split())
    return [name for name in KERNEL_FEATURES if name in flags]


def usable_cores() -> int:
    """Logical cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that matter for latency (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def gpu_name() -> str | None:
    """The first CUDA device's name, or None without one."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def capture_environment(
    threads: int | None,
    *,
    runtime: str | None = None,
    precision: str = "fp32",
    deploy: bool = True,
) -> dict[str, Any]:
    """Everything a latency measurement depends on, as a flat JSON-able dict (MobileOne §4: latency is per device)."""
    import torch

    env: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        # The widest vector ISA PyTorch's own CPU kernels dispatch to here (e.g. AVX512, AVX2, DEFAULT).
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "logical_cores": os.cpu_count() or 1,
        "usable_cores": usable_cores(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "runtime": runtime,
        "precision": precision,
        "form": "deploy" if deploy else "train-time",
        "gpu": gpu_name(),
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        # 1-, 5- and 15-min load averages when this row was taken: on a shared host they say which
        # numbers were measured under contention (None where the OS has no load average).
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    env.update({f"{name}_version": version for name, version in library_versions().items()})
    return env
