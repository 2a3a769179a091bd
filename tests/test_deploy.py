"""Deploy runtimes (every artifact checked against torch), the int8 tuner, ``search`` and ``mobilebone deploy``."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import mobilebone
from mobilebone.analysis.runtimes import RuntimeMismatch, prepare
from mobilebone.backends.engine import Engine, check_parity
from mobilebone.deploy import DEPLOY_RUNTIMES, get_runtime, search
from mobilebone.deploy.report import CHOSEN, REJECTED, UNAVAILABLE
from mobilebone.export.calibration import generated_images
from mobilebone.export.prepare import prepare_for_export
from mobilebone.testing import randomize_batchnorm

SIZE = (64, 64)


@pytest.fixture(scope="module")
def deploy_model() -> nn.Module:
    """Fused MobileOne-S0 with non-trivial BatchNorm statistics, 10 classes."""
    torch.manual_seed(0)
    model = mobilebone.create_model("mobileone_s0", num_classes=10)
    return prepare_for_export(randomize_batchnorm(model).eval())


@pytest.mark.parametrize("spec", DEPLOY_RUNTIMES, ids=[r.name for r in DEPLOY_RUNTIMES])
def test_runtime_artifact_matches_torch(spec, deploy_model, tmp_path) -> None:
    """Each runtime's artifact (the engine runs the file it wrote) matches torch on the example and another image."""
    if spec.name == "onnxruntime-int8-tuned":
        pytest.skip("the tuner's layer sweep is tested on a small graph below (test_int8_tune_*)")
    if not spec.available():
        pytest.skip(f"{spec.name} not installed here ({spec.install})")
    images = generated_images(2, {}, SIZE, seed=3)
    engine = spec.build(deploy_model, images[:1], generated_images(4, {}, SIZE, seed=4), 1, tmp_path)
    assert engine.precision == spec.precision
    assert engine.artifacts and all(p.is_file() and p.stat().st_size > 0 for p in engine.artifacts)
    with torch.inference_mode():
        expected = deploy_model(images)
    for i in range(2):
        check_parity(spec.name, engine.infer(images[i : i + 1]), expected[i : i + 1], spec.rtol)


def test_prepare_checks_and_times(monkeypatch, tmp_path) -> None:
    """The analysis-style adapter: built, checked on x, a zero-argument call to time.

    The tuner quantizes the graph once per layer, so this runs on MobileOne-S0's blocks and widths with one
    block per stage (9 convolutions, not 43); the sweep itself is tested on a small graph below."""
    monkeypatch.setattr("mobilebone.models.mobileone.DEPTHS", (1, 1, 1, 1))
    model = mobilebone.create_model("mobileone_s0", num_classes=10)
    model = prepare_for_export(randomize_batchnorm(model).eval())
    prepared = prepare("onnxruntime-int8-tuned", model, torch.randn(1, 3, *SIZE), 1, tmp_path)
    assert (
        prepared.precision == "int8" and 1e-4 < prepared.info["parity_error"] <= prepared.info["parity_rtol"]
    )
    assert prepared.run() is not None  # (an error below 1e-4 would be a float32 graph, not int8)


def test_executorch_refuses_undelegated_graph(deploy_model, tmp_path) -> None:
    """Without the XNNPACK partitioner nothing is delegated: the check must say so (seconds per run otherwise)."""
    pytest.importorskip("executorch")
    from executorch.exir import to_edge_transform_and_lower

    from mobilebone.backends.executorch import undelegated_ops

    x = torch.randn(1, 3, *SIZE)
    edge = to_edge_transform_and_lower(torch.export.export(deploy_model, (x,)), partitioner=[])
    assert undelegated_ops(edge)


def _fake(name: str, infer, precision: str = "fp32", tolerance: float = 1e-4):
    def build(model, x, calibration, threads, workdir) -> Engine:
        return Engine(name, precision, infer, artifacts=[])

    return dataclasses.replace(
        get_runtime("onnxruntime"), name=name, prepare=None, build=build, rtol=tolerance
    )


def test_prepare_raises_on_mismatch(deploy_model, tmp_path) -> None:
    spec = _fake("broken", lambda x: torch.zeros(1, 10))
    with pytest.raises(RuntimeMismatch, match="broken output differs"):
        prepare(spec, deploy_model, torch.randn(1, 3, *SIZE), 1, tmp_path)


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    return generated_images(12, {}, SIZE, seed=7), generated_images(6, {}, SIZE, seed=8)


def test_search_rejects_and_never_chooses_a_wrong_candidate(deploy_model, monkeypatch) -> None:
    """A candidate that is far faster but wrong, and one that fails to build, are rejected; ORT is chosen."""
    held, calib = _images()
    wrong = _fake("fast-but-wrong", lambda x: torch.zeros(1, 10).index_fill_(1, torch.tensor([3]), 1.0))

    def explode(*args):
        raise RuntimeError("converter crashed")

    crashing = dataclasses.replace(get_runtime("onnxruntime"), name="crashing", build=explode)
    missing = dataclasses.replace(get_runtime("openvino"), name="missing", available=lambda: False)
    report = search(
        deploy_model, held, calib, runtimes=["onnxruntime", wrong, crashing, missing], threads=1, rounds=2
    )
    status = {c.runtime: c for c in report.candidates}
    assert status["fast-but-wrong"].status == REJECTED and "error" in status["fast-but-wrong"].error
    # It was timed (and is the fastest), yet not chosen.
    assert status["fast-but-wrong"].median_ms < status["onnxruntime"].median_ms
    assert status["crashing"].status == REJECTED and "converter crashed" in status["crashing"].error
    assert status["missing"].status == UNAVAILABLE
    assert report.chosen is not None and report.chosen.runtime == "onnxruntime"
    assert status["onnxruntime"].top1_agreement == 1.0


def test_agreement_drop_rejects(deploy_model) -> None:
    """Right scale, wrong decisions: passes the error tolerance, fails the agreement limit."""
    held, calib = _images()

    def swapped(x):
        with torch.inference_mode():
            return deploy_model(x).flip(1)

    spec = _fake("swapped", swapped, tolerance=10.0)
    report = search(deploy_model, held, calib, runtimes=[spec], threads=1, rounds=1)
    (result,) = report.candidates
    assert result.status == REJECTED and "agreement drops" in result.error
    assert report.chosen is None


def test_int8_error_gate_is_the_median_image_not_the_worst(deploy_model) -> None:
    """One image far off (a low-margin image rounded) fails a max-error gate but not a median one; top-1
    agreement still judges decisions. A candidate wrong on every image fails both."""
    held, calib = _images()
    seen = []

    def one_image_off(x):
        with torch.inference_mode():
            out = deploy_model(x)
        seen.append(1)
        return out * 1.5 if len(seen) == 1 else out  # scaled: large error, same top-1

    def every_image_off(x):
        with torch.inference_mode():
            return deploy_model(x) * 1.5

    specs = [
        dataclasses.replace(_fake(name, fn, "int8", tolerance=0.3), error_statistic=stat)
        for name, fn, stat in (
            ("one-off-max", one_image_off, "max"),
            ("one-off-median", one_image_off, "median"),
            ("all-off-median", every_image_off, "median"),
        )
    ]
    status = {}
    for spec in specs:
        seen.clear()
        (result,) = search(deploy_model, held, calib, runtimes=[spec], threads=1, rounds=1).candidates
        status[spec.name] = result
    assert status["one-off-max"].status == REJECTED and "max relative" in status["one-off-max"].error
    assert status["one-off-median"].verified and status["one-off-median"].median_relative_error < 1e-4
    assert status["all-off-median"].status == REJECTED and "median relative" in status["all-off-median"].error


def test_agreement_drop_equal_to_the_limit_passes(deploy_model) -> None:
    """One image of 200 changing class is a 0.5-point drop, which a 0.5 limit allows (no float round-off)."""
    from mobilebone.deploy.search import verify

    held = torch.zeros(200, 3, 1, 1)
    reference = torch.eye(10)[torch.arange(200) % 10]
    logits = reference.clone()
    logits[0] = torch.eye(10)[1]  # image 0: class 0 -> class 1
    engine = Engine("one-off", "int8", lambda x: logits[int(x.flatten()[0])].unsqueeze(0))
    held[:, 0, 0, 0] = torch.arange(200, dtype=torch.float32)
    spec = _fake("one-off", engine.infer, "int8", tolerance=10.0)
    result = verify(spec, engine, held, reference, max_agreement_drop=0.5)
    assert result.top1_agreement == 0.995 and result.verified, result.error
    assert not verify(spec, engine, held, reference, max_agreement_drop=0.4).verified


def test_unavailable_package_is_reported(monkeypatch, deploy_model) -> None:
    """With OpenVINO's package missing every OpenVINO candidate is 'unavailable', and search still runs."""
    import importlib.util

    from mobilebone.backends import openvino

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "openvino" else real(n, *a))
    assert not openvino.available() and not openvino.bf16_available() and not openvino.nncf_available()
    held, calib = _images()
    report = search(deploy_model, held, calib, runtimes=["openvino", "openvino-int8"], threads=1, rounds=1)
    assert [c.status for c in report.candidates] == [UNAVAILABLE, UNAVAILABLE]
    assert report.chosen is None


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        )
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


def test_int8_tune_sweeps_every_layer_and_excludes_the_worst(tmp_path) -> None:
    """One sensitivity entry per quantizable node; excluded nodes stay float32 in the output graph."""
    import onnx

    from mobilebone.backends import int8
    from mobilebone.export.onnx import write_onnx

    torch.manual_seed(1)
    model = _Toy().eval()
    with torch.no_grad():  # one huge weight makes its conv's per-tensor activation range the worst
        model.body[2].weight[0].mul_(50.0)
    src, dst = tmp_path / "toy.onnx", tmp_path / "toy-int8.onnx"
    write_onnx(model, torch.randn(1, 3, 16, 16), src, opset=17, dynamic_batch=False)
    images = torch.randn(12, 3, 16, 16)
    plan = int8.tune(src, dst, images, threads=1, max_excluded=1, min_gain=0.0)
    nodes = int8.quantizable_nodes(src)
    assert sorted(s.node for s in plan.sensitivity) == sorted(n for n, _ in nodes)
    assert set(plan.method_errors) == set(int8.METHODS) and plan.method in int8.METHODS
    assert len(plan.excluded) == 1 and plan.excluded[0] == plan.sensitivity[0].node
    graph = onnx.load(str(dst)).graph
    producers = {o: n.op_type for n in graph.node for o in n.output}
    for node in graph.node:
        if node.name in plan.excluded:
            assert producers.get(node.input[1]) != "DequantizeLinear", f"{node.name} was quantized"
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)
    assert plan.final_error <= plan.method_errors[plan.method] + 1e-9


def test_cli_deploy_end_to_end(tmp_path, capsys) -> None:
    from mobilebone.cli.main import main

    out = tmp_path / "out"
    argv = ["deploy", "mobileone_s0", "--input-size", "64", "--num-classes", "10", "--threads", "1"]
    argv += ["--runtimes", "onnxruntime,onnxruntime-int8", "--held-out", "8", "--num-calibration", "8"]
    assert main([*argv, "--rounds", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "random-init weights" in text and "generated" in text
    report = json.loads((out / "report.json").read_text())
    chosen = next(c for c in report["candidates"] if c["status"] == CHOSEN)
    assert report["chosen"] == chosen["runtime"]
    assert all(Path(p).parent == out and Path(p).is_file() for p in chosen["artifacts"])
    assert (out / "latency.png").stat().st_size > 0 and "Chosen:" in (out / "report.md").read_text()


def test_cli_deploy_bad_runtime(capsys) -> None:
    from mobilebone.cli.main import main

    assert main(["deploy", "mobileone_s0", "--runtimes", "tensorrt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown deploy runtime 'tensorrt'" in err[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--threads", "1000"], "--threads 1000 is more than"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--input-size", "100000"], "--input-size must be between 32 and 2048"),
    ],
)
def test_deploy_bounds_threads_and_sizes_before_any_work(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobilebone.cli.main import main

    assert main(["deploy", "mobileone_s0", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


# --- the committed results behind docs/benchmarks.md's deploy table -------------------------------------


def test_benchmarks_md_deploy_table_quotes_trained_224_json() -> None:
    """Each model row of docs/benchmarks.md's deploy table is the chosen candidate of trained_224.json,
    with its ms, speed-ups, agreement and ONNX Runtime int8's, as the JSON has them."""
    root = Path(__file__).resolve().parents[1]
    results = json.loads((root / "benchmarks/results/deploy/trained_224.json").read_text())["models"]
    doc = (root / "docs/benchmarks.md").read_text()
    labels = {"mobileone_s0": "MobileOne-S0", "mobilenetv4_conv_small": "MNv4-Conv-S"}
    for name, label in labels.items():
        ratios = results[name]["ratios"]
        chosen = next(rt for rt, r in ratios.items() if r["status"] == "chosen")
        c, q = ratios[chosen], ratios["onnxruntime-int8"]
        row = (
            f"| {label} | {chosen} | {c['median_ms']:.2f} | {c['x_vs_ort_fp32']:.2f}× | "
            f"{c['x_vs_timm_eager_fused']:.2f}× | {100 * c['top1_agreement']:.1f} % | "
            f"{q['median_ms']:.2f} ms, {q['x_vs_ort_fp32']:.2f}×, {100 * q['top1_agreement']:.1f} % |"
        )
        assert row in doc, row
        assert results[name]["trained_input_size"] == 224 and results[name]["fp32_distinct_top1"] == 10
    one_thread = json.loads((root / "benchmarks/results/deploy/trained_224_1thread.json").read_text())
    s0 = one_thread["models"]["mobileone_s0"]
    assert s0["threads"] == 1 and s0["trained_input_size"] == 224
    c, q = s0["ratios"]["openvino-int8"], s0["ratios"]["onnxruntime-int8"]
    assert c["status"] == "chosen"
    assert (
        f"| MobileOne-S0, 1 thread | openvino-int8 | {c['median_ms']:.2f} | {c['x_vs_ort_fp32']:.2f}× | "
        f"{c['x_vs_timm_eager_fused']:.2f}× | {100 * c['top1_agreement']:.1f} % | "
        f"{q['median_ms']:.2f} ms, {q['x_vs_ort_fp32']:.2f}×, {100 * q['top1_agreement']:.1f} % |"
    ) in doc


def test_export_md_int8_profile_table_quotes_profile_224_json() -> None:
    """docs/export.md's MobileOne-S0 kernel profile: its 1×1 row, totals and 1×1 rates are those of the JSON,
    and the JSON records the CPU features that explain them."""
    root = Path(__file__).resolve().parents[1]
    profile = json.loads((root / "benchmarks/results/int8/profile_224.json").read_text())
    s0 = profile["models"]["mobileone_s0"]
    doc = (root / "docs/export.md").read_text()
    columns = ("fp32", "int8", "openvino f32", "openvino int8")
    one_by_one = [sum(ms for kind, ms in s0[c].items() if "1x1" in kind) for c in columns]
    assert "| 1×1 convolutions | " + " | ".join(f"{ms:.2f}" for ms in one_by_one) + " |" in doc
    assert "| all kernels | " + " | ".join(f"{sum(s0[c].values()):.2f}" for c in columns) + " |" in doc
    rates = [
        2 * sum(m for k, m in s0["conv_macs"].items() if "1x1" in k) / (ms / 1e3) / 1e9 for ms in one_by_one
    ]
    assert "| 1×1 convolutions, G(FL)OP/s | " + " | ".join(f"{r:.0f}" for r in rates) + " |" in doc
    peaks = profile["peaks_gops"]
    assert f"`MatMul` float32 {peaks['onnxruntime MatMul fp32']:.0f} GFLOP/s" in doc
    assert f"`MatMulInteger` {peaks['onnxruntime MatMulInteger u8s8']:.0f} GOP/s" in doc
    features = profile["environment"]["cpu_features"]
    assert "avx512_vnni" in features and not any(f.startswith("amx") for f in features)


@pytest.mark.parametrize(
    "result",
    ["trained_224.json", "trained_224_1thread.json", "trained_224_litert.json", "deploy_224_quiet.json"],
)
def test_benchmarks_md_lists_every_candidate_of(result: str) -> None:
    """docs/benchmarks.md quotes every candidate of each deploy run with the JSON's ms, ratios, agreement and
    error; rejected and unavailable ones with their reason."""
    root = Path(__file__).resolve().parents[1]
    results = json.loads((root / "benchmarks/results/deploy" / result).read_text())["models"]
    doc = (root / "docs/benchmarks.md").read_text()
    for row in results.values():
        ort = next(c for c in row["candidates"] if c["runtime"] == "onnxruntime")["median_ms"]
        timm_ms = row["references_ms"]["timm eager, fused"]
        for c in row["candidates"]:
            ms = c.get("median_ms")
            if ms is None or not math.isfinite(ms):
                assert f"| {c['runtime']} | {c['precision']} | {c['status']} | – |" in doc
                continue
            line = (
                f"| {c['runtime']} | {c['precision']} | {c['status']} | {ms:.2f} | {ort / ms:.2f}× | "
                f"{timm_ms / ms:.2f}× | {100 * c['top1_agreement']:.1f} % | {c['max_relative_error']:.1e}"
            )
            line += f"; {c['error']} |" if c.get("error") else " |"
            assert line in doc, line


def test_export_md_int8_exclusions_table_quotes_its_json() -> None:
    """docs/export.md's keep-layers-in-float32 table is exclusions_224.json's, row by row."""
    root = Path(__file__).resolve().parents[1]
    result = json.loads((root / "benchmarks/results/int8/exclusions_224.json").read_text())
    doc = (root / "docs/export.md").read_text()
    assert result["weights"].endswith(".safetensors")  # the trained model: agreement means something
    for name, r in result["variants"].items():
        line = (
            f"| {name} | {r['float32_nodes']} | {r['median_ms']:.2f} | {r['x_vs_ort_fp32']:.2f}× | "
            f"{100 * r['top1_agreement']:.1f} % |"
        )
        assert line in doc, line
