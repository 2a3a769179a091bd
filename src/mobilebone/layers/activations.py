"""Activation functions of the MobileOne activation study (Vasu et al., 2023, §3, "Activation Functions").

Static ones are PyTorch's own (ReLU, GELU, Hardswish, SiLU). The others are written here from their
papers: SE-ReLU (Squeeze-Excite then ReLU), Dynamic ReLU A/B (Chen et al., ECCV 2020) and Dynamic
Shift-Max (MicroNet, Li et al., ICCV 2021). The dynamic ones compute their coefficients from the input
through a small "hyper-function" (global pool → FC → ReLU → FC), so they cost few MACs but add a global
reduction, a synchronisation point and several elementwise passes per layer — the latency the study
exposes. Every module takes ``(B, C, H, W)`` and exports to ONNX with the legacy exporter.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mobilebone.layers.squeeze_excite import SqueezeExcite, make_divisible

__all__ = [
    "ACTIVATIONS",
    "DynamicReLU",
    "DynamicShiftMax",
    "SEReLU",
    "create_activation",
]


def _hidden_width(channels: int, reduction: int) -> int:
    """Width of the hyper-function's first FC: C / R, at least 4 (tiny layers still get a bottleneck)."""
    return max(4, channels // reduction)


class SEReLU(nn.Module):
    """Squeeze-Excite (Hu et al., 2018, §3, Eq. 2-4: s = σ(W2 δ(W1 z)), x̃_c = s_c·x_c) followed by ReLU.

    The MobileOne study's "SE-ReLU": every activation becomes SE + ReLU, so each layer gains a global
    average pool (a full pass over the tensor before anything downstream can start).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.se = SqueezeExcite(channels)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.se(x))


class DynamicReLU(nn.Module):
    """Dynamic ReLU (Chen et al., "Dynamic ReLU", ECCV 2020, arXiv 2003.10027), variants A and B.

    Definition (the paper's method section, "Dynamic ReLU"), for channel c with K linear pieces:
        y_c = f_θ(x)(x_c) = max_{1≤k≤K} ( a_c^k(x) · x_c + b_c^k(x) ),
    where the coefficients come from a hyper-function θ(x) of the whole input, implemented like SE:
    global average pool → FC (C → C/R) → ReLU → FC → normalised to [-1, 1] by 2σ(·) − 1, giving the
    residuals Δa, Δb; then
        a_c^k(x) = α^k + λ_a·Δa_c^k(x),   b_c^k(x) = β^k + λ_b·Δb_c^k(x),
    with λ_a = 1.0, λ_b = 0.5, α^1 = 1 and α^k = β^k = 0 otherwise (so at Δ = 0 the function is ReLU),
    K = 2. Variants: **A** ("spatial and channel-shared") outputs 2K numbers shared by every channel and
    position; **B** ("spatial-shared and channel-wise") outputs 2K·C numbers, one set per channel.
    (Variant C, also spatial-wise, is not part of the MobileOne study.)

    Sources and what is unverified: the paper's PDF was not reachable here, so its equation numbers and
    subsection numbers are **not verified** and are not cited; the two equations above, K = 2, the
    λ values, the initial α, β and the A/B/C definitions agree with the paper's abstract/introduction and
    with two independent secondary transcriptions of its method section. The reduction **R = 4 comes from public
    implementations** (e.g. ``Islanna/DynamicReLU`` ``dyrelu.py``, ``reduction=4``), not from the paper.
    """

    def __init__(
        self,
        channels: int,
        variant: str = "B",
        *,
        num_pieces: int = 2,
        reduction: int = 4,
        lambda_a: float = 1.0,
        lambda_b: float = 0.5,
    ) -> None:
        super().__init__()
        if variant not in ("A", "B"):
            raise ValueError(f"DynamicReLU variant must be 'A' or 'B', got {variant!r}")
        if num_pieces < 1:
            raise ValueError(f"num_pieces must be >= 1, got {num_pieces}")
        self.variant, self.num_pieces, self.channels = variant, num_pieces, channels
        self.lambda_a, self.lambda_b = lambda_a, lambda_b
        groups = 1 if variant == "A" else channels  # how many channels get their own coefficients
        hidden = _hidden_width(channels, reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 2 * num_pieces * groups)
        alpha = torch.zeros(num_pieces)
        alpha[0] = 1.0  # α^1 = 1: the initial function is max(x, 0)
        self.alpha: Tensor
        self.register_buffer("alpha", alpha, persistent=False)

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Slopes ``a`` and intercepts ``b``, each ``(B, K, C or 1, 1, 1)``."""
        batch = x.shape[0]
        theta = self.fc2(self.act(self.fc1(x.mean((2, 3)))))  # (B, 2K·G)
        theta = 2.0 * torch.sigmoid(theta) - 1.0  # normalised residuals in [-1, 1]
        theta = theta.view(batch, 2, self.num_pieces, -1, 1, 1)  # (B, {a, b}, K, G, 1, 1)
        alpha = self.alpha.view(1, self.num_pieces, 1, 1, 1)
        return alpha + self.lambda_a * theta[:, 0], self.lambda_b * theta[:, 1]  # β^k = 0

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.coefficients(x)
        out = a[:, 0] * x + b[:, 0]
        for k in range(1, self.num_pieces):  # running max: never materialises K copies of x
            out = torch.maximum(out, a[:, k] * x + b[:, k])
        return out


class DynamicShiftMax(nn.Module):
    """Dynamic Shift-Max (Li et al., "MicroNet", ICCV 2021, arXiv 2108.05894, section "Dynamic Shift-Max").

    With C channels split into G groups, x_{C/G}(i, j) = x_{(i + j·C/G) mod C} is the input circularly
    shifted by j groups along the channel axis, and the activation is
        y_i = max_{1≤k≤K} Σ_{j=0}^{J-1} a^k_{i,j}(x) · x_{(i + j·C/G) mod C}
    with J = 2 (each output mixes its own channel and the one C/G further), K = 2. The coefficients
    a^k_{i,j}(x) come from a hyper-function "as in Dynamic ReLU": global average pool → FC (C → C/R)
    → ReLU → FC (→ C·J·K), normalised to [-1, 1] by 2·hsigmoid(·) − 1; initial value a^1_{i,0} = 1,
    others 0 (ReLU at Δ = 0). R = 4, hidden width rounded to a multiple of 4 (at least 4).

    Sources and what is unverified: the paper's PDF was not reachable here, so its equation number is
    **not verified** and not cited; the equation above agrees with a secondary transcription of the
    paper. The normalisation, R, the hidden-width rounding and the initial values follow MicroNet's
    official code (``liyunsheng13/micronet`` ``backbone/activation.py``, ``DYShiftMax``), which differs
    from the equation in two ways we do *not* copy: its shifted copy also rotates by one channel inside
    the group (channel q of group g reads channel q+1 of group g+1), and its network builder passes
    ``act_max=2``, which widens the coefficient residuals to [-2, 2] (the class default gives [-1, 1]).
    """

    def __init__(
        self, channels: int, groups: int = 4, *, num_mix: int = 2, num_pieces: int = 2, reduction: int = 4
    ) -> None:
        super().__init__()
        if groups < 1 or channels % groups:
            raise ValueError(f"DynamicShiftMax: channels ({channels}) must be divisible by groups ({groups})")
        self.channels, self.groups = channels, groups
        self.num_mix, self.num_pieces = num_mix, num_pieces
        hidden = make_divisible(_hidden_width(channels, reduction), 4)
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, channels * num_mix * num_pieces)
        init = torch.zeros(num_pieces, num_mix)
        init[0, 0] = 1.0
        self.init: Tensor
        self.register_buffer("init", init, persistent=False)

    def coefficients(self, x: Tensor) -> Tensor:
        """The mixing weights a^k_{i,j}, shaped ``(B, K, J, C, 1, 1)``."""
        theta = self.fc2(self.act(self.fc1(x.mean((2, 3)))))
        theta = 2.0 * F.hardsigmoid(theta) - 1.0
        theta = theta.view(x.shape[0], self.num_pieces, self.num_mix, self.channels, 1, 1)
        return theta + self.init.view(1, self.num_pieces, self.num_mix, 1, 1, 1)

    def shifted(self, x: Tensor, j: int) -> Tensor:
        """x_{(i + j·C/G) mod C} for every channel i: a channel rotation by j groups."""
        step = (j * self.channels // self.groups) % self.channels
        if step == 0:
            return x
        return torch.cat((x[:, step:], x[:, :step]), dim=1)  # two slices + concat: exports everywhere

    def forward(self, x: Tensor) -> Tensor:
        a = self.coefficients(x)
        shifts = [self.shifted(x, j) for j in range(self.num_mix)]
        out: Tensor | None = None
        for k in range(self.num_pieces):
            z = a[:, k, 0] * shifts[0]
            for j in range(1, self.num_mix):
                z = z + a[:, k, j] * shifts[j]
            out = z if out is None else torch.maximum(out, z)
        assert out is not None
        return out


def _static(factory: Callable[[], nn.Module]) -> Callable[[int], nn.Module]:
    return lambda channels: factory()


# Name → builder taking the channel count. Order = the study's table order (static first).
ACTIVATIONS: dict[str, Callable[[int], nn.Module]] = {
    "relu": _static(nn.ReLU),
    "gelu": _static(nn.GELU),  # exact (erf) form, as in MNv4-Hybrid-L
    "hardswish": _static(nn.Hardswish),
    "silu": _static(nn.SiLU),
    "se_relu": SEReLU,
    "dynamic_shift_max": DynamicShiftMax,
    "dy_relu_a": lambda channels: DynamicReLU(channels, "A"),
    "dy_relu_b": lambda channels: DynamicReLU(channels, "B"),
}


def create_activation(name: str, channels: int) -> nn.Module:
    """Build activation ``name`` (a key of ``ACTIVATIONS``) for a ``channels``-wide tensor."""
    try:
        builder = ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}") from None
    return builder(channels)
