"""Numerical checks of an exported model against the PyTorch deploy model it came from.

The reference is the deploy model run in float64 (the exact value, up to ~1e-15), not float32 torch:
a float32 runtime can only be asked to be as close to the exact value as float32 torch itself is. For a
well-conditioned network that is ~1e-6 relative and the fixed tolerance (1e-4 for ONNX) decides. A
network that amplifies rounding — random-init BatchNorm statistics, hybrids with large attention logits
— can have float32 torch itself off by 1e-4 or more; then the tolerance is ``NOISE_FACTOR`` times that
measured noise. Measured on all ten models (64 px, randomized layer scale, calibrated BatchNorm): ONNX
Runtime's error against float64 was 0.6–1.9× torch float32's in 20 model/seed pairs, 7× in the worst
case seen (an ill-conditioned MobileOne-S4); the attention path was not the source (docs/export.md).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mobilebone.export.errors import ExportError
from mobilebone.numerics import max_relative_error

# A runtime may be this many times further from float64 than float32 torch is (see the module docstring).
NOISE_FACTOR = 10.0


@dataclass(frozen=True)
class Reference:
    """torch's output on one input, in float32 (what the deploy model computes) and in float64 (exact)."""

    x: Tensor
    float32: Tensor
    float64: Tensor

    @property
    def noise(self) -> float:
        """Float32 torch's own max relative error against float64: the model's rounding-noise floor."""
        return max_relative_error(self.float32.to(torch.float64), self.float64)


def tolerance(rtol: float, noise: float | None) -> float:
    """The error allowed to a runtime: ``rtol``, or ``NOISE_FACTOR`` × float32 torch's noise if larger."""
    return rtol if noise is None else max(rtol, NOISE_FACTOR * noise)


@torch.no_grad()
def float64_output(model: nn.Module, x: Tensor) -> Tensor:
    """``model(x)`` computed in float64 on a copy (the model itself is left in its dtype)."""
    return copy.deepcopy(model).to(torch.float64)(x.to(torch.float64))


def float32_noise(model: nn.Module, x: Tensor) -> float:
    """Max relative error of ``model(x)`` in float32 against the same model in float64."""
    with torch.no_grad():
        out = copy.deepcopy(model).float()(x.float())
    return max_relative_error(out.to(torch.float64), float64_output(model, x))


@dataclass(frozen=True)
class Verification:
    """One comparison: which runtime, which input shape, the error measured and the tolerance.

    ``noise`` is set when the reference was float64: float32 torch's own error, which may widen the
    tolerance (see ``tolerance``).
    """

    runtime: str
    input_shape: tuple[int, ...]
    max_relative_error: float
    rtol: float
    noise: float | None = None

    @property
    def tolerance(self) -> float:
        """The error allowed: ``rtol``, widened to ``NOISE_FACTOR × noise`` for a noisy model."""
        return tolerance(self.rtol, self.noise)

    @property
    def ok(self) -> bool:
        """Whether the error is within the tolerance."""
        return self.max_relative_error <= self.tolerance

    def __str__(self) -> str:
        status = "ok" if self.ok else "FAILED"
        if self.noise is None:
            return (
                f"{self.runtime} vs torch on {self.input_shape}: max relative error "
                f"{self.max_relative_error:.2e} (tolerance {self.rtol:.0e}) {status}"
            )
        return (
            f"{self.runtime} vs torch (float64) on {self.input_shape}: max relative error "
            f"{self.max_relative_error:.2e} (tolerance {self.tolerance:.1e}; torch float32 itself "
            f"{self.noise:.1e}) {status}"
        )


@dataclass
class ExportReport:
    """What an export wrote and every check it ran on the written file (all passed, or it raised)."""

    path: Path
    verifications: list[Verification] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per check (what the CLI prints)."""
        return [str(v) for v in self.verifications]


def _as_float64(runtime: str, x: Tensor, actual: np.ndarray | Tensor, expected: Tensor) -> Tensor:
    """A runtime's output as a float64 tensor; a shape unlike torch's is an ``ExportError``."""
    got = torch.as_tensor(np.asarray(actual), dtype=torch.float64)
    if tuple(got.shape) != tuple(expected.shape):
        raise ExportError(
            f"{runtime} output shape {tuple(got.shape)} differs from torch's {tuple(expected.shape)} "
            f"on input {tuple(x.shape)}"
        )
    return got


def compare(
    runtime: str, x: Tensor, actual: np.ndarray | Tensor, expected: Tensor, rtol: float
) -> Verification:
    """Compare a runtime's output with torch's; raise ``ExportError`` if shapes differ or error > ``rtol``."""
    want = expected.detach().to(torch.float64)
    got = _as_float64(runtime, x, actual, want)
    return _checked(Verification(runtime, tuple(x.shape), max_relative_error(got, want), rtol))


def verify_output(
    runtime: str, reference: Reference, actual: np.ndarray | Tensor, rtol: float
) -> Verification:
    """Compare a runtime's output with the float64 reference; raise ``ExportError`` beyond ``tolerance``."""
    got = _as_float64(runtime, reference.x, actual, reference.float64)
    error = max_relative_error(got, reference.float64)
    return _checked(Verification(runtime, tuple(reference.x.shape), error, rtol, reference.noise))


def _checked(result: Verification) -> Verification:
    """Return ``result``, or raise ``ExportError`` naming it when it failed."""
    if not result.ok:
        raise ExportError(f"verification failed: {result}")
    return result
