"""``mobilebone detect`` / ``segment`` on saved task models: output, overlays, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from mobilebone.cli.main import main
from mobilebone.tasks import create_detector, create_segmenter, load_task_model, save_task_model
from mobilebone.tasks.checkpoint import class_names


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("weights")
    detector = create_detector("ssdlite_mobilenetv4_conv_small", num_classes=5, size=128)
    segmenter = create_segmenter("lraspp_mobilenetv4_conv_small", num_classes=3)
    return {
        "detect": save_task_model(detector, folder / "det.safetensors"),
        "segment": save_task_model(segmenter, folder / "seg.safetensors"),
    }


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "scene.png"
    Image.fromarray((torch.rand(90, 120, 3) * 255).to(torch.uint8).numpy()).save(path)
    return path


def test_saved_task_model_round_trips(weights: dict[str, Path]) -> None:
    model = load_task_model(weights["segment"])
    again = load_task_model(weights["segment"])
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["out"], again(x)["out"], rtol=0, atol=0)
    assert model.task_name == "lraspp_mobilenetv4_conv_small" and model.num_classes == 3


def test_detect_prints_boxes_and_writes_overlay(weights, image: Path, tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "out"
    args = [
        "detect",
        str(image),
        "--weights",
        str(weights["detect"]),
        "--score-thresh",
        "0",
        "--out-dir",
        str(out_dir),
    ]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{image}: ") and "objects" in lines[0]
    box_lines = [line for line in lines if line.startswith("  class ")]
    assert box_lines, "score threshold 0 shows every kept detection"
    x1, y1, x2, y2 = map(float, box_lines[0].split()[-4:])
    assert 0 <= x1 <= x2 <= 120 and 0 <= y1 <= y2 <= 90  # original image coordinates
    with Image.open(out_dir / "scene_detections.png") as overlay:
        assert overlay.format == "PNG" and overlay.size == (120, 90)


def test_segment_writes_colour_overlay(weights, image: Path, tmp_path: Path, capsys) -> None:
    assert (
        main(["segment", str(image), "--weights", str(weights["segment"]), "--out-dir", str(tmp_path)]) == 0
    )
    assert "class " in capsys.readouterr().out
    assert (tmp_path / "scene_segmentation.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--num-classes", "7"], "trained for 5 classes, not 7"),
        (["--model", "retinanet_mobilenetv4_conv_small"], "holds ssdlite_mobilenetv4_conv_small"),
        (["--model", "ssdlite_nope"], "unknown detection model"),
    ],
)
def test_detect_rejects_mismatches(weights, image: Path, tmp_path: Path, capsys, extra, message) -> None:
    args = [
        "detect",
        str(image),
        "--weights",
        str(weights["detect"]),
        "--out-dir",
        str(tmp_path / "o"),
        *extra,
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mobilebone detect: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_bad_image_fails_before_any_output(weights, image: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    out_dir = tmp_path / "o"
    args = ["segment", str(image), str(bad), "--weights", str(weights["segment"]), "--out-dir", str(out_dir)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mobilebone segment: error: ") and "notes.png: not a readable image" in err
    assert not out_dir.exists()  # the good image got no overlay either: no partial output


def test_segment_names_classes_from_the_weights_file(image: Path, tmp_path: Path, capsys) -> None:
    segmenter = create_segmenter("lraspp_mobilenetv4_conv_small", num_classes=3)
    names = ["sky", "disc", "ring"]
    named = save_task_model(segmenter, tmp_path / "named.safetensors", {"classes": json.dumps(names)})
    assert class_names(named, 3) == names
    assert main(["segment", str(image), "--weights", str(named), "--out-dir", str(tmp_path)]) == 0
    shares = capsys.readouterr().out.splitlines()[0]
    assert "class " not in shares and any(f"{name}: " in shares for name in names)
    plain = save_task_model(segmenter, tmp_path / "plain.safetensors")  # no names stored: numbered
    assert class_names(plain, 3) == ["background", "class 1", "class 2"]
