"""Studies: activations against their papers' equations, ONNX export, the study networks, end-to-end runs."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from mobilebone import reparameterize_model
from mobilebone.cli.main import main
from mobilebone.layers.activations import ACTIVATIONS, DynamicReLU, DynamicShiftMax, SEReLU, create_activation
from mobilebone.studies import activations, attention, blocks
from mobilebone.studies.mhsa import MultiHeadAttention2d, MultiHeadAttentionBlock
from mobilebone.studies.networks import NUM_CONV_LAYERS, StudyNet
from mobilebone.studies.report import OUTPUT_FILES, markdown_report, write_outputs
from mobilebone.studies.run import StudyResult, StudySettings, run_study
from mobilebone.testing import randomize_batchnorm

B, C, H, W = 2, 8, 3, 3


def _x(seed: int = 0) -> Tensor:
    return torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _spread_hyper_function(module: nn.Module) -> None:
    """Large random FC weights, so the coefficients leave their initial values and the max switches pieces."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(2.0 * torch.randn(p.shape, generator=generator, dtype=p.dtype))


def _hyper(module: nn.Module, x: Tensor, b: int) -> list[float]:
    """FC2(ReLU(FC1(mean over H, W))) for sample ``b``, written out with explicit sums."""
    w1, b1 = module.fc1.weight.detach(), module.fc1.bias.detach()
    w2, b2 = module.fc2.weight.detach(), module.fc2.bias.detach()
    pooled = [sum(float(x[b, c, i, j]) for i in range(H) for j in range(W)) / (H * W) for c in range(C)]
    hidden = [
        max(0.0, sum(float(w1[o, c]) * pooled[c] for c in range(C)) + float(b1[o]))
        for o in range(w1.shape[0])
    ]
    return [
        sum(float(w2[o, i]) * hidden[i] for i in range(len(hidden))) + float(b2[o])
        for o in range(w2.shape[0])
    ]


@pytest.mark.parametrize("variant", ["A", "B"])
def test_dynamic_relu_matches_the_papers_equation(variant: str) -> None:
    # Chen et al. 2020 §3: y_c = max_k a_c^k x_c + b_c^k; a^k = α^k + λ_a Δa^k, b^k = λ_b Δb^k,
    # Δ = 2σ(θ) − 1, α^1 = 1, other α, β = 0, K = 2; A: one (a, b) set for all channels, B: one per channel.
    act = DynamicReLU(C, variant).double()
    _spread_hyper_function(act)
    x = _x()
    with torch.no_grad():
        y = act(x)
    groups = 1 if variant == "A" else C
    K = 2
    for b in range(B):
        theta = [
            2.0 / (1.0 + math.exp(-t)) - 1.0 for t in _hyper(act, x, b)
        ]  # layout: [a^1..a^K, b^1..b^K] × G
        for c, i, j in itertools.product(range(C), range(H), range(W)):
            g = 0 if groups == 1 else c
            pieces = [
                ((1.0 if k == 0 else 0.0) + 1.0 * theta[k * groups + g]) * float(x[b, c, i, j])
                + 0.5 * theta[(K + k) * groups + g]
                for k in range(K)
            ]
            assert float(y[b, c, i, j]) == pytest.approx(max(pieces), rel=1e-9, abs=1e-12)


def test_dynamic_shift_max_matches_the_papers_equation() -> None:
    # MicroNet §3.3: y_i = max_k Σ_j a^k_{i,j} x_{(i + j C/G) mod C}, J = 2, K = 2; a = init + (2·hσ(θ) − 1).
    groups, J, K = 4, 2, 2
    act = DynamicShiftMax(C, groups).double()
    _spread_hyper_function(act)
    x = _x(2)
    with torch.no_grad():
        y = act(x)
    for b in range(B):
        raw = _hyper(act, x, b)
        delta = [2.0 * min(max(t / 6.0 + 0.5, 0.0), 1.0) - 1.0 for t in raw]  # layout: (K, J, C)
        for i, h, w in itertools.product(range(C), range(H), range(W)):
            mixes = []
            for k in range(K):
                total = 0.0
                for j in range(J):
                    a = delta[(k * J + j) * C + i] + (1.0 if (k, j) == (0, 0) else 0.0)
                    total += a * float(x[b, (i + j * C // groups) % C, h, w])
                mixes.append(total)
            assert float(y[b, i, h, w]) == pytest.approx(max(mixes), rel=1e-9, abs=1e-12)


def test_dynamic_activations_start_as_relu() -> None:
    # Both papers initialise so that a zero hyper-function output gives ReLU (α^1 = 1, the rest 0).
    x = _x(3)
    for act in (DynamicReLU(C, "A"), DynamicReLU(C, "B"), DynamicShiftMax(C, 4)):
        act = act.double()
        with torch.no_grad():
            act.fc2.weight.zero_()
            act.fc2.bias.fill_(0.0)
        torch.testing.assert_close(act(x), x.clamp_min(0))


def test_se_relu_matches_squeeze_excite_then_relu() -> None:
    act = SEReLU(C).double()
    _spread_hyper_function(act)
    x = _x(4)
    fc1, fc2 = act.se.fc1, act.se.fc2
    pooled = x.sum((2, 3)) / (H * W)  # (B, C)
    hidden = torch.einsum("oc,bc->bo", fc1.weight[:, :, 0, 0], pooled) + fc1.bias
    gate = 1.0 / (
        1.0 + torch.exp(-(torch.einsum("co,bo->bc", fc2.weight[:, :, 0, 0], hidden.clamp_min(0)) + fc2.bias))
    )
    expected = (x * gate[:, :, None, None]).clamp_min(0)
    torch.testing.assert_close(act(x), expected)


@pytest.mark.parametrize(
    ("name", "formula"),
    [
        ("relu", lambda v: max(v, 0.0)),
        ("gelu", lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))),
        ("hardswish", lambda v: v * min(max(v + 3.0, 0.0), 6.0) / 6.0),
        ("silu", lambda v: v / (1.0 + math.exp(-v))),
    ],
)
def test_static_activations_match_their_formulas(name: str, formula: object) -> None:
    x = 3.0 * _x(5)
    y = create_activation(name, C)(x)
    for index in itertools.product(range(B), range(C), range(H), range(W)):
        assert float(y[index]) == pytest.approx(formula(float(x[index])), rel=1e-9, abs=1e-12)  # type: ignore[operator]


def test_unknown_activation_and_bad_groups_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="choose from"):
        create_activation("swishy", 8)
    with pytest.raises(ValueError, match="divisible"):
        DynamicShiftMax(10, 4)


@pytest.mark.parametrize("name", ["se_relu", "dynamic_shift_max", "dy_relu_a", "dy_relu_b"])
def test_dynamic_activations_export_to_onnx_and_run_in_onnxruntime(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from mobilebone.export.onnx import run_onnx, to_onnx

    model = StudyNet(name, num_classes=10).eval()
    randomize_batchnorm(model)
    path = to_onnx(model, tmp_path / f"{name}.onnx", input_size=32, verify=True).path  # raises on mismatch
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(torch.from_numpy(run_onnx(path, x)), expected, rtol=1e-4, atol=1e-5)


def test_study_network_has_30_conv_layers_and_activations() -> None:
    for kw in ({}, {"unit": "mobileone"}):
        fused = reparameterize_model(StudyNet(**kw))  # type: ignore[arg-type]
        assert sum(isinstance(m, nn.Conv2d) for m in fused.modules()) == NUM_CONV_LAYERS == 30
    net = StudyNet("dy_relu_b")
    assert sum(isinstance(m, DynamicReLU) for m in net.modules()) == 30
    assert sum(m.has_skip for m in StudyNet(skip=True).blocks) == 10  # type: ignore[union-attr]


def test_mobileone_study_network_fuses_exactly() -> None:
    net = StudyNet(unit="mobileone", branches=4, num_classes=10).double().eval()
    randomize_batchnorm(net)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(reparameterize_model(net)(x), net(x))
    with pytest.raises(ValueError, match="ReLU only"):
        StudyNet("gelu", unit="mobileone")


def _depthwise_then_bn(x: Tensor, conv: nn.Module, bn: nn.Module) -> Tensor:
    """3×3 depthwise conv, stride 2, zero padding 1 (sum over the 9 taps), then eval BatchNorm, written out."""
    w = conv.weight[:, 0]  # (C, 3, 3)
    _, _, height, width = x.shape
    ho, wo = (height - 1) // 2 + 1, (width - 1) // 2 + 1
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    out = sum(
        padded[:, :, i : i + 2 * ho - 1 : 2, j : j + 2 * wo - 1 : 2] * w[None, :, i, j, None, None]
        for i in range(3)
        for j in range(3)
    )
    if conv.bias is not None:
        out = out + conv.bias[None, :, None, None]
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (out - bn.running_mean[None, :, None, None]) * scale[None, :, None, None] + bn.bias[
        None, :, None, None
    ]


@pytest.mark.parametrize("kv_stride", [1, 2])
def test_mhsa_matches_a_direct_multi_head_computation(kv_stride: int) -> None:
    # Vaswani et al. §3.2.2: every head h has its own Q, K, V projection; softmax(Q Kᵀ / √d) V; concat; W_O.
    # With kv_stride=2, K and V read the map reduced by a stride-2 3×3 depthwise conv + BN (MNv4 §3.3).
    dim, heads, d = 16, 4, 8
    attn = MultiHeadAttention2d(dim, heads, d, d, kv_stride=kv_stride).double().eval()
    randomize_batchnorm(attn)
    x = torch.randn(2, dim, 5, 6, dtype=torch.float64)  # odd height: the padding matters
    tokens = x.flatten(2)  # (B, C, N)

    def kv_tokens(branch: nn.Module) -> Tensor:
        if kv_stride == 1:
            return tokens
        return _depthwise_then_bn(x, branch.down_conv, branch.norm).flatten(2)  # (B, C, M), M = 3·3

    wq = attn.query.proj.weight[:, :, 0, 0].reshape(heads, d, dim)
    wk = attn.key.proj.weight[:, :, 0, 0].reshape(heads, d, dim)
    wv = attn.value.proj.weight[:, :, 0, 0].reshape(heads, d, dim)
    q = torch.einsum("hdc,bcn->bhnd", wq, tokens)
    k = torch.einsum("hdc,bcm->bhmd", wk, kv_tokens(attn.key))
    v = torch.einsum("hdc,bcm->bhmd", wv, kv_tokens(attn.value))
    assert k.shape[2] == (30 if kv_stride == 1 else 9)
    probs = torch.softmax(torch.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(d), dim=-1)
    heads_out = torch.einsum("bhnm,bhmd->bhdn", probs, v).reshape(2, heads * d, 5, 6)
    expected = torch.einsum("oc,bchw->bohw", attn.output.proj.weight[:, :, 0, 0], heads_out)
    with torch.no_grad():
        for impl in ("sdpa", "matmul"):
            attn.attn_impl = impl
            torch.testing.assert_close(attn(x), expected)


@pytest.mark.parametrize("kv_stride", [1, 2])
def test_mhsa_block_reparameterizes_exactly(kv_stride: int) -> None:
    block = MultiHeadAttentionBlock(16, 2, 8, 8, kv_stride=kv_stride, layer_scale=0.5).double().eval()
    randomize_batchnorm(block)
    x = torch.randn(2, 16, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(reparameterize_model(block)(x), block(x))


def test_attention_cases_follow_the_hybrids_token_grids() -> None:
    shapes = {c.group: c.input_shape for c in attention.cases()}
    assert shapes["Hybrid-M s16: 16×16×160, 4×64"] == (1, 160, 16, 16)
    assert shapes["Hybrid-M s32: 8×8×256, 4×64"] == (1, 256, 8, 8)
    assert shapes["Hybrid-L s16: 24×24×192, 8×48"] == (1, 192, 24, 24)
    assert shapes["Hybrid-L s32: 12×12×512, 8×64"] == (1, 512, 12, 12)


def test_onnxruntime_study_subset_runs(tmp_path: Path) -> None:
    """The cases with unusual graphs (train-time branches, MHSA with K/V down-sampling) time in ORT."""
    pytest.importorskip("onnxruntime")
    chosen = [c for c in blocks.cases(32) if c.name == "mobileone_train"]
    chosen += [
        c
        for c in attention.cases(64)
        if c.name.startswith(("mhsa_kv2 [Hybrid-M s16", "mqa_kv2 [Hybrid-M s16"))
    ]
    assert len(chosen) == 3
    settings = StudySettings(runtimes=("onnxruntime",), runs=3, warmup=1, threads=1, max_seconds=None)
    result = run_study("subset", "subset", chosen, settings)
    assert [r["status"] for r in result.rows] == ["ok"] * 3, [r["error"] for r in result.rows]
    assert all(len(r["samples_ms"]) == 3 and r["min_ms"] > 0 for r in result.rows)
    files = write_outputs(result, tmp_path)
    assert [f.name for f in files] == list(OUTPUT_FILES)


@pytest.mark.parametrize(
    ("study", "size", "count"),
    [("activations", 32, len(ACTIVATIONS)), ("blocks", 32, 6), ("attention", 64, len(attention.cases(64)))],
)
def test_study_cli_end_to_end(study: str, size: int, count: int, tmp_path: Path) -> None:
    out = tmp_path / study
    argv = ["study", study, "--input-size", str(size), "--runs", "2", "--warmup", "0", "--runtimes", "eager"]
    assert main([*argv, "--threads", "1", "--rounds", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == count and all(r["status"] == "ok" for r in rows)
    assert all(int(r["macs"]) > 0 and int(r["params"]) > 0 and float(r["min_ms"]) > 0 for r in rows)
    document = json.loads((out / "results.json").read_text())
    assert document["environment"]["cpu"] and len(document["rows"][0]["samples_ms"]) == 4  # 2 rounds × 2 runs
    assert "| case |" in (out / "report.md").read_text()
    assert markdown_report(StudyResult.from_document(document)) == (out / "report.md").read_text()
    assert (out / "latency.png").read_bytes().startswith(b"\x89PNG")


def test_run_study_reports_each_case_after_it_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    import mobilebone.studies.run as run_module

    events: list[str] = []
    real = run_module.measure_latency

    def spy(model: nn.Module, **kwargs: object) -> object:
        events.append("measure")
        return real(model, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "measure_latency", spy)
    chosen = blocks.cases(32)[:2]
    settings = StudySettings(runtimes=("eager",), runs=2, warmup=0, threads=1, max_seconds=None, rounds=2)
    run_study(
        "blocks",
        "t",
        chosen,
        settings,
        on_start=lambda case, rt: events.append(f"start {case.name}"),
        on_done=lambda case, rt: events.append(f"done {case.name}"),
    )
    one_round = ["start plain", "measure", "done plain", "start se", "measure", "done se"]
    assert events == one_round * 2


def test_study_progress_bar_advances_when_a_case_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.progress import Progress

    import mobilebone.studies.run as run_module

    events: list[str] = []
    real_measure, real_advance = run_module.measure_latency, Progress.advance

    def measure(model: nn.Module, **kwargs: object) -> object:
        events.append("measure")
        return real_measure(model, **kwargs)  # type: ignore[arg-type]

    def advance(self: Progress, *args: object, **kwargs: object) -> None:
        events.append("advance")
        real_advance(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "measure_latency", measure)
    monkeypatch.setattr(Progress, "advance", advance)
    argv = ["study", "blocks", "--input-size", "32", "--runs", "1", "--warmup", "0", "--runtimes", "eager"]
    assert main([*argv, "--threads", "1", "--out", str(tmp_path / "b")]) == 0
    assert events == ["measure", "advance"] * 6  # never ahead of the measurement


def test_study_cli_rejects_bad_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["study", "blocks", "--runs", "0", "--out", str(tmp_path)]) == 2
    assert "--runs must be >= 1" in capsys.readouterr().err
    assert main(["study", "blocks", "--runtimes", "nonsense", "--out", str(tmp_path)]) == 2
    assert "unknown runtime" in capsys.readouterr().err
    (tmp_path / "file").write_text("keep")
    assert main(["study", "blocks", "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "keep"


def test_activation_study_covers_every_activation_with_paper_numbers() -> None:
    cases = activations.cases(32)
    assert [c.name for c in cases] == list(ACTIVATIONS)
    assert all("unverified" in c.paper for c in cases if c.name in activations.PAPER_MS)


# --- the committed results behind docs/studies.md ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "studies"


@pytest.mark.parametrize("study", ["activations", "blocks", "attention"])
def test_docs_tables_are_the_committed_results(study: str) -> None:
    """docs/studies.md quotes comparison_table() of each results.json verbatim; its chart is the run's."""
    from mobilebone.studies.report import comparison_table

    result = StudyResult.from_document(json.loads((RESULTS / study / "results.json").read_text()))
    assert all(r["status"] == "ok" for r in result.rows)
    docs = (ROOT / "docs" / "studies.md").read_text()
    runtimes = result.settings.runtimes
    if study == "attention":
        groups = list(dict.fromkeys(r["group"] for r in result.rows))
        attention_groups = [g for g in groups if not g.startswith("UIB")]
        uib_groups = [g for g in groups if g.startswith("UIB")]
        tables = [
            comparison_table(result.rows, runtimes, groups=attention_groups),
            comparison_table(result.rows, runtimes, groups=uib_groups, paper=False),
        ]
    else:
        tables = [comparison_table(result.rows, runtimes)]
    for table in tables:
        assert table in docs
    assert (RESULTS / study / "report.md").read_text() == markdown_report(result)
    assert (ROOT / "docs" / "img" / f"studies_{study}.png").read_bytes() == (
        RESULTS / study / "latency.png"
    ).read_bytes()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--threads", "0"], "--threads must be >= 1, got 0"),
        (["--threads", "1000"], "--threads 1000 is more than the"),
        (["--input-size", "-1"], "--input-size must be between 32 and 2048, got -1"),
        (["--input-size", "100000"], "--input-size must be between 32 and 2048, got 100000"),
        (["--runtimes", "eager,tpu"], "unknown runtime 'tpu'"),
    ],
)
def test_study_bad_flags_are_one_line_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobilebone.cli.main import main

    assert main(["study", "blocks", *flags, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
