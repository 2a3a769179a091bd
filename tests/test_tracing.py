"""Graph capture: FX (and torchvision's feature extractor), torch.export, TorchScript tracing, torch.compile.

FX graphs must equal eager outputs exactly; the input check keeps its errors in eager mode only.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from mobilebone import list_models
from mobilebone.models.contract import Backbone, is_graph_capture
from mobilebone.testing import FORMS, model_in_form

ALL_MODELS = list_models()
SMALL = ["mobileone_s0", "mobilenetv4_conv_small", "mobilenetv4_hybrid_medium"]  # one of each block kind
SIZE = 64


@functools.cache
def _model(name: str, form: str) -> Backbone:
    """One eval-mode model per (name, form), BN statistics randomized; never mutate it (deepcopy first)."""
    model = model_in_form(name, form, seed=4)
    assert isinstance(model, Backbone)
    return model


def _x(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(11))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_fx_symbolic_trace_equals_eager(name: str, form: str) -> None:
    model = _model(name, form)
    graph = torch.fx.symbolic_trace(model)
    x = _x()
    with torch.no_grad():
        assert torch.equal(graph(x), model(x))


@pytest.mark.parametrize(("name", "form"), [(n, "train") for n in ALL_MODELS] + [(n, "built") for n in SMALL])
def test_torchvision_feature_extractor(name: str, form: str) -> None:
    from torchvision.models.feature_extraction import create_feature_extractor

    model = _model(name, form)
    modules = model.feature_info.module_name()
    extractor = create_feature_extractor(model, return_nodes={m: m for m in modules})
    x = _x()
    with torch.no_grad():
        got = extractor(x)
        expected = model.forward_intermediates(x, intermediates_only=True)
    assert list(got) == modules
    for ours, theirs in zip(got.values(), expected, strict=True):
        assert torch.equal(ours, theirs)


def test_input_check_is_eager_only() -> None:
    model = _model("mobileone_s0", "built")
    assert not is_graph_capture()
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        model(torch.randn(1, 1, SIZE, SIZE))
    graph = torch.fx.symbolic_trace(model)
    assert "check_input" not in graph.code and "ValueError" not in graph.code
    with pytest.raises(RuntimeError):  # the graph has no check: the conv itself rejects the input
        graph(torch.randn(1, 1, SIZE, SIZE))


@pytest.mark.parametrize(
    ("name", "form"),
    [("mobileone_s0", "train"), ("mobilenetv4_conv_small", "fused"), ("mobilenetv4_hybrid_medium", "built")],
)
def test_torch_export_non_strict(name: str, form: str) -> None:
    model = _model(name, form)
    x = _x()
    program = torch.export.export(model, (x,), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x))


@pytest.mark.parametrize("name", ["mobileone_s0", "mobilenetv4_hybrid_medium"])
def test_torchscript_by_tracing(name: str) -> None:
    """``torch.jit.script`` is deprecated in this torch; tracing-based TorchScript is what is supported."""
    model = _model(name, "built")
    x = _x()
    with torch.no_grad():
        traced = torch.jit.trace(model, x)
        torch.testing.assert_close(traced(_x(3)[:, :, :48, :40]), model(_x(3)[:, :, :48, :40]))


def test_torch_compile_fullgraph_has_no_graph_breaks() -> None:
    """~10 s on 2 CPU cores (dynamo + AOT autograd; inductor's C++ build is left out to stay fast)."""
    model = _model("mobileone_s0", "built")
    x = torch.randn(1, 3, 32, 32)
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


def test_compile_skips_the_input_check() -> None:
    """Under torch.compile the check is not traced: no guard or graph break comes from it."""

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + float(is_graph_capture())

    compiled = torch.compile(Probe(), fullgraph=True, backend="eager")
    assert float(compiled(torch.zeros(1))) == 1.0
    assert float(Probe()(torch.zeros(1))) == 0.0
