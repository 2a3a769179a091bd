"""Roofline model: hand-computed bytes and MACs of a tiny conv, the prediction, the ridge sweep and the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from mobilebone.analysis.roofline import (
    RIDGE_POINTS,
    Hardware,
    Layer,
    on_front_by_ridge,
    predict_seconds,
    profile_layers,
    relative_cost,
)
from mobilebone.cli.main import main


class TinyNet(nn.Module):
    """conv 3→8 (3×3, pad 1, no bias) → ReLU → linear 8·8·8 → 10 (with bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.act = nn.ReLU()
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(x)).flatten(1))


def test_tiny_net_by_hand() -> None:
    layers = {layer.name: layer for layer in profile_layers(TinyNet(), 8)}
    assert set(layers) == {"conv", "fc"}  # the parameter-free ReLU is fused into the conv
    conv, fc = layers["conv"], layers["fc"]
    # conv: 8 out × 3 in × 3·3 taps at 8·8 positions; weights 8·3·3·3 fp32; input 3·8·8, output 8·8·8.
    assert conv.macs == 8 * 3 * 9 * 64 == 13824
    assert (conv.weight_bytes, conv.input_bytes, conv.output_bytes) == (864, 768, 2048)
    assert conv.intensity == pytest.approx(13824 / 3680)
    # fc: 512 → 10; weights 512·10 + 10 bias.
    assert fc.macs == 5120
    assert (fc.weight_bytes, fc.input_bytes, fc.output_bytes) == (4 * 5130, 2048, 40)
    half = {layer.name: layer for layer in profile_layers(TinyNet(), 8, "fp16")}
    assert half["conv"].bytes == 3680 // 2
    with pytest.raises(ValueError, match="precision"):
        profile_layers(TinyNet(), 8, "fp8")


def test_prediction_is_sum_of_max() -> None:
    conv = Layer("conv", "Conv2d", 13824, 864, 768, 2048)  # 3680 bytes
    fc = Layer("fc", "Linear", 5120, 20520, 2048, 40)  # 22608 bytes
    hw = Hardware("toy", peak_macs=1e9, bandwidth=1e8)  # ridge 10 MACs/byte: both layers memory-bound
    assert hw.ridge_point == 10
    assert predict_seconds([conv, fc], hw) == pytest.approx(3680 / 1e8 + 22608 / 1e8)
    fast_memory = Hardware("toy", peak_macs=1e9, bandwidth=1e12)  # compute-bound: MACs only
    assert predict_seconds([conv, fc], fast_memory) == pytest.approx((13824 + 5120) / 1e9)
    mixed = Hardware("toy", peak_macs=1e9, bandwidth=1e9)  # conv compute-, fc memory-bound
    assert predict_seconds([conv, fc], mixed) == pytest.approx(13824 / 1e9 + 22608 / 1e9)
    assert relative_cost([conv, fc], 0) == 13824 + 5120
    assert relative_cost([conv, fc], 10) == 10 * 3680 + 10 * 22608


def test_ridge_sweep_shape_and_ranking() -> None:
    # A: few MACs, many bytes (activation-heavy); B: many MACs, few bytes; C: dominated everywhere.
    a = [Layer("a", "Conv2d", 100, 0, 50, 50)]
    b = [Layer("b", "Conv2d", 1000, 0, 1, 1)]
    c = [Layer("c", "Conv2d", 2000, 0, 200, 200)]
    flags = on_front_by_ridge([a, b, c], [70.0, 75.0, 72.0], RIDGE_POINTS)
    assert len(flags) == 3 and all(len(row) == len(RIDGE_POINTS) == 51 for row in flags)
    assert RIDGE_POINTS[0] == 0 and RIDGE_POINTS[-1] == 500
    # At RP 0 A is cheaper (100 vs 1000 MACs), so both are on the front; from RP 10 on A costs
    # 100·RP ≥ 1000 = B's cost while less accurate, so only B remains. C is never on it.
    assert flags[0][0] and flags[1][0] and not flags[0][1] and not any(flags[0][1:])
    assert all(flags[1]) and not any(flags[2])


def test_cli_roofline_given_peaks(tmp_path: Path) -> None:
    out = tmp_path / "rl"
    code = main(
        [
            "roofline",
            "mobileone_s0",
            "mobilenetv4_conv_small",
            "--input-size",
            "64",
            "--ridge-sweep",
            "--peak-gmacs",
            "10",
            "--bandwidth-gbs",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    with (out / "roofline.csv").open() as handle:
        rows = {r["model"]: r for r in csv.DictReader(handle)}
    s0 = rows["mobileone_s0"]
    assert int(s0["input_size"]) == 64
    from mobilebone import create_model
    from mobilebone.analysis.complexity import count_macs
    from mobilebone.reparam import reparameterize_model

    assert int(s0["macs"]) == count_macs(reparameterize_model(create_model("mobileone_s0")), 64).total
    with (out / "ridge_sweep.csv").open() as handle:
        sweep = list(csv.DictReader(handle))
    assert len(sweep) == 2 and len(sweep[0]) == 2 + len(RIDGE_POINTS)
    assert (out / "ridge_sweep.png").is_file() and (out / "roofline_layers.png").is_file()
    assert "ridge point 5.0" in (out / "roofline.md").read_text()
    assert main(["roofline", "mobileone_s0", "--peak-gmacs", "-1", "--bandwidth-gbs", "2"]) == 2


def test_measured_hardware_is_plausible() -> None:
    from mobilebone.analysis.roofline import measure_hardware

    hw = measure_hardware(1, repeats=1)
    assert 1e8 < hw.peak_macs < 1e13 and 1e8 < hw.bandwidth < 1e12


def test_cli_roofline_correlates_with_recorded_rows(tmp_path: Path) -> None:
    import json

    rows = [
        {
            "model": m,
            "runtime": "onnxruntime",
            "input_size": 64,
            "status": "ok",
            "form": "deploy",
            "batch_size": 1,
        }
        | {"min_ms": ms, "macs": macs, "params": params, "source": "mobilebone", "kind": "convnet"}
        for m, ms, macs, params in (
            ("mobilenetv4_conv_small", 1.0, 1.5e7, 3.8e6),
            ("mobileone_s0", 2.0, 2.2e7, 2.1e6),
            ("mobileone_s1", 3.0, 6.6e7, 4.8e6),
        )
    ]
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "results.json").write_text(json.dumps({"rows": rows}))
    out = tmp_path / "rl"
    args = ["roofline", "mobileone_s0", "--input-size", "64", "--results", str(bench), "--out", str(out)]
    # Memory so fast that every layer is compute-bound: the prediction must be MACs / PeakMACs exactly.
    assert main([*args, "--peak-gmacs", "10", "--bandwidth-gbs", "1e9"]) == 0
    with (out / "roofline_vs_measured.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["model"] for r in table] == ["mobilenetv4_conv_small", "mobileone_s0", "mobileone_s1"]
    from mobilebone.analysis.complexity import count_macs
    from mobilebone.analysis.zoo import zoo

    for r in table:
        macs = count_macs(zoo()[r["model"]].deploy(), 64).total
        assert float(r["predicted_ms"]) == pytest.approx(macs / 10e9 * 1e3, rel=1e-6)
    text = (out / "roofline.md").read_text()
    assert "| onnxruntime | roofline prediction | 3 | +1.00" in text


def test_device_presets_are_vendor_data_converted_to_dense_macs() -> None:
    from mobilebone.analysis.roofline import BYTES_PER_ELEMENT
    from mobilebone.analysis.roofline_devices import PRECISIONS, device_presets, parse_presets

    assert set(PRECISIONS) == set(BYTES_PER_ELEMENT)
    presets = device_presets()
    assert presets and all(p.source.startswith("https://") and p.description for p in presets.values())
    # NVIDIA's 1979 sparse FP16 TFLOPS: 989.5 dense TFLOPS = 494.75 T dense MACs/s; 4.8 TB/s.
    h200 = presets[("h200", "fp16")].hardware()
    assert h200.peak_macs == pytest.approx(494.75e12) and h200.bandwidth == pytest.approx(4.8e12)
    assert h200.ridge_point == pytest.approx(494.75e12 / 4.8e12)
    # Apple's 38 TOPS, stated dense: 19 T MACs/s over 120 GB/s.
    assert presets[("apple_m4", "int8")].hardware().ridge_point == pytest.approx(19e12 / 120e9)
    header = "device,precision,stated_tops,sparse,bandwidth_gbs,description,source,notes\n"
    with pytest.raises(ValueError, match=r"x\.csv line 2: precision 'fp8'"):
        parse_presets(header + "d,fp8,1,false,1,d,https://x,\n", origin="x.csv")
    with pytest.raises(ValueError, match="source an https"):
        parse_presets(header + "d,fp32,1,false,1,d,,\n", origin="x.csv")


def test_cli_roofline_device_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rl"
    args = ["roofline", "mobilenetv4_conv_small", "--input-size", "64", "--out", str(out)]
    assert main([*args, "--device", "jetson_orin_nano_super", "--precision", "int8"]) == 0
    text = (out / "roofline.md").read_text()
    # 67 sparse TOPS → 16.75 T dense MACs/s; 102 GB/s → ridge point 164.2 MACs/byte.
    assert (
        "jetson_orin_nano_super" in text
        and "16750.0 GMACs/s, bandwidth 102.0 GB/s, ridge point 164.2" in text
    )
    capsys.readouterr()
    assert main([*args, "--device", "apple_m4", "--precision", "fp32"]) == 2
    err = capsys.readouterr().err.strip()
    assert "device 'apple_m4' has no fp32 preset; it has int8" in err and len(err.splitlines()) == 1
