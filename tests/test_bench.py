"""Latency harness, environment capture, correlation study, resumable sweep and the ``bench`` CLI.

No timing is asserted: these tests check the statistics, the bookkeeping and the files, not the speed.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from mobilebone import create_model
from mobilebone.analysis import LatencyResult, available_runtimes, capture_environment, measure_latency
from mobilebone.analysis.correlation import latency_correlations, rank_correlation
from mobilebone.analysis.latency import percentile, time_calls
from mobilebone.analysis.report import read_json
from mobilebone.analysis.runtimes import RuntimeMismatch, check_runtime
from mobilebone.analysis.sweep import Sweep, SweepSettings
from mobilebone.analysis.zoo import ZooEntry, default_models, resolve_models, zoo
from mobilebone.cli.main import main

HAS_ORT = "onnxruntime" in available_runtimes()


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
    assert result.p90_ms == pytest.approx(float(np.percentile(samples, 90)))
    data = result.to_dict()
    assert data["samples_ms"] == samples and data["min_ms"] == 1.0


def test_percentile_matches_numpy() -> None:
    values = list(np.random.default_rng(0).random(37))
    for q in (0, 10, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_time_calls_counts_warmup_and_runs() -> None:
    calls = []
    samples = time_calls(lambda: calls.append(1), runs=7, warmup=3)
    assert len(calls) == 10 and len(samples) == 7 and all(s >= 0 for s in samples)
    with pytest.raises(ValueError, match="runs must be"):
        time_calls(lambda: None, runs=0, warmup=0)


def test_time_cap_stops_early_but_keeps_a_minimum() -> None:
    samples = time_calls(lambda: None, runs=10_000_000, warmup=0, max_seconds=1e-9)
    assert 10 <= len(samples) < 10_000_000


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
def test_measure_latency_onnxruntime_checks_parity(deploy: bool) -> None:
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
    assert "parity_error" in result.info


def test_measure_latency_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown runtime 'tpu'"):
        measure_latency(tiny_convnet(), runtime="tpu")
    with pytest.raises(ValueError, match="input_shape"):
        measure_latency(tiny_convnet(), runtime="eager", input_shape=(3, 32, 32))  # type: ignore[arg-type]
    assert check_runtime("auto") in available_runtimes()


def test_runtime_mismatch_is_a_value_error() -> None:
    # The CLI prints ValueErrors as one line; a failed parity check must be one.
    assert issubclass(RuntimeMismatch, ValueError)


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
    json.dumps(env)  # must be storable as is


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
    assert len(names) >= 20 or "timm/deit_tiny_patch16_224" not in names
    defaults = [e.name for e in default_models()]
    assert set(defaults) <= set(names) and {"mobileone_s0", "torchvision/resnet18"} <= set(defaults)
    assert [e.name for e in resolve_models(["mobileone_s[01]"])] == ["mobileone_s0", "mobileone_s1"]
    with pytest.raises(ValueError, match="unknown model 'resnet9000'"):
        resolve_models(["resnet9000"])


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
    deploy = create_model("mobileone_s0", inference_mode=True)
    assert s0["params"] == sum(p.numel() for p in deploy.parameters())  # deploy-form count
    assert document["environment"]["threads"] == 1
    assert (out / "latency_vs_macs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "Spearman" in report and "mobileone_s0" in report
    assert "mobileone_s0" in capsys.readouterr().out

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
        (["--input-size", "8"], "--input-size must be >= 32"),
    ],
)
def test_bad_flags_are_one_line_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *flags, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing written for a bad command line
