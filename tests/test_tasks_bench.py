"""``mobilebone bench --task``: the results document's structure and one-line errors (no speed asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobilebone.cli.main import main

FAST = ["--input-size", "64", "--runs", "2", "--warmup", "0", "--threads", "1"]


def test_bench_task_writes_rows_beside_the_torchvision_reference(tmp_path: Path) -> None:
    argv = [
        "bench",
        "--task",
        "segmentation",
        "--models",
        "lraspp_mobileone_s0",
        *FAST,
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    document = json.loads((tmp_path / "bench_segmentation.json").read_text())
    assert document["settings"]["input_size"] == 64 and document["settings"]["deploy"] is True
    assert document["environment"]["threads"] == 1 and document["environment"]["cpu"]
    assert set(document["references"]) == {"lraspp_mobilenet_v3_large"}
    ref = document["references"]["lraspp_mobilenet_v3_large"]
    assert ref["params"] > 1e6 and ref["macs"] > 0
    (row,) = document["rows"]
    assert row["status"] == "ok" and row["reference"] == "lraspp_mobilenet_v3_large"
    assert len(row["samples_ms"]) == len(row["reference_samples_ms"]) == 2
    assert row["ratio_min"] == pytest.approx(row["min_ms"] / row["reference_min_ms"])
    assert row["params"] > 0 and row["macs"] > 0


def test_detectors_are_timed_to_raw_head_outputs() -> None:
    import torch

    from mobilebone.tasks.bench import NUM_CLASSES, build_reference
    from mobilebone.tasks.raw import raw_outputs

    spec = "torchvision.models.detection:ssdlite320_mobilenet_v3_large"
    view = raw_outputs(build_reference(spec, NUM_CLASSES["detection"]))
    with torch.no_grad():
        boxes, logits = view(torch.rand(1, 3, 64, 64))
    assert boxes.shape[-1] == 4 and logits.shape[-1] == 91 and boxes.shape[1] == logits.shape[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--task", "detection", "--models", "ssdlite_mobileone_s9"],
            "unknown detection model 'ssdlite_mobileone_s9'",
        ),
        (
            ["--task", "detection", "--models", "lraspp_mobileone_s0"],
            "unknown detection model 'lraspp_mobileone_s0'",
        ),
        (["--task", "segmentation", "--models", "yolo_*"], "no segmentation model matches 'yolo_*'"),
        (["--task", "detection", "--runtimes", "onnxruntime"], "--task times in PyTorch eager only"),
        (["--task", "detection", "--resume"], "--resume is not supported with --task"),
    ],
)
def test_bench_task_bad_input_is_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.iterdir())
