"""``train --task`` / ``eval --task``: detection and segmentation on the shared, resumable training loop."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from mobilebone.cli.main import main
from mobilebone.tasks.checkpoint import load_task_model
from mobilebone.tasks.training import make_task, resolve_task_config
from mobilebone.tasks.training.recipes import EMBEDDED_RECIPES, HEAD_RECIPES
from mobilebone.training import checkpointing as ckpt
from mobilebone.training.loop import _Run
from mobilebone.training.task import Task

# 16 training images of 64 px, batches of 4: 4 steps an epoch; a checkpoint every 2 steps (mid-epoch).
TINY = [
    "--input-size", "64", "--embedded-train", "16", "--embedded-val", "8", "--batch-size", "4",
    "--checkpoint-every", "2", "--workers", "0", "--log-every", "1",
]  # fmt: skip
DET = ["--task", "detection", "--model", "ssdlite_mobileone_s0"]
SEG = ["--task", "segmentation", "--model", "lraspp_mobilenetv4_conv_small"]


def _voc(root: Path, label: int) -> Path:
    """A one-image VOC2012 layout whose mask holds ``label``."""
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "JPEGImages" / "a.jpg")
    Image.fromarray(np.full((40, 40), label, np.uint8), mode="L").save(root / "SegmentationClass" / "a.png")
    for split in ("train", "val"):
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("a\n")
    return root


def test_tasks_implement_the_task_interface_and_take_their_recipe(tmp_path: Path) -> None:
    det = resolve_task_config("detection", "ssdlite_mobileone_s0")
    seg = resolve_task_config("segmentation", "deeplabv3_mobileone_s0", str(_voc(tmp_path, 1)), epochs=3)
    assert isinstance(make_task(det), Task) and isinstance(make_task(seg), Task)
    assert (det.recipe, det.lr_base, det.input_size) == (
        "embedded",
        EMBEDDED_RECIPES["detection"].lr_base,
        160,
    )
    assert (seg.recipe, seg.input_size, seg.aux_loss) == ("head", HEAD_RECIPES["deeplabv3"].input_size, True)
    assert seg.epochs == 3 and seg.weight_decay == HEAD_RECIPES["deeplabv3"].weight_decay


def test_train_detection_then_detect_and_eval_its_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "det"
    small = ["--embedded-train", "8", "--embedded-val", "4"]  # later flags win: 2 steps, 4 held-out images
    assert main(["train", *DET, *TINY, *small, "--epochs", "1", "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert "val map50" in report and "deploy form map50" in report
    saved = json.loads((out / "config.json").read_text())
    assert saved["task"] == "detection" and saved["input_size"] == 64
    for name in ("model_best", "model_deploy"):  # task-model files: detect / segment / eval read them
        model = load_task_model(out / f"{name}.safetensors")
        assert model.task_name == "ssdlite_mobileone_s0" and model.num_classes == 5  # type: ignore[attr-defined]
    image = tmp_path / "shapes.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(image)
    weights = str(out / "model_deploy.safetensors")
    assert main(["detect", str(image), "--weights", weights, "--out-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["eval", "--task", "detection", "--weights", weights, "--workers", "0"]) == 0
    line = capsys.readouterr().out
    assert "4 images at 64 px" in line and "mAP@[.5:.95]" in line and "mAP@.5" in line
    assert main(["eval", "--task", "segmentation", "--weights", weights]) == 2
    assert "holds a detection model" in capsys.readouterr().err


def test_segmentation_interrupted_then_resumed_with_the_same_command_matches_a_whole_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["train", *SEG, *TINY, "--epochs", "2", "--seed", "3"]
    assert main([*command, "--out", str(tmp_path / "whole")]) == 0

    original = _Run.save_resume

    def save_then_stop(self: _Run, epoch: int, step_in_epoch: int) -> None:
        original(self, epoch, step_in_epoch)
        if epoch == 1 and step_in_epoch == 2:  # mid-way through the second epoch
            raise KeyboardInterrupt

    monkeypatch.setattr(_Run, "save_resume", save_then_stop)
    cut = tmp_path / "cut"
    assert main([*command, "--out", str(cut)]) == 130
    assert ckpt.load_state(cut)["step_in_epoch"] == 2 and not (cut / "model_deploy.safetensors").exists()
    monkeypatch.setattr(_Run, "save_resume", original)
    capsys.readouterr()
    # The same command with a changed flag is refused, naming only that flag; the same one continues.
    assert main([*command, "--out", str(cut), "--resume", "--epochs", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--epochs (saved: 2, given: 5)" in err and "--task" not in err and len(err.splitlines()) == 1
    assert main([*command, "--out", str(cut), "--resume"]) == 0
    report = capsys.readouterr().out
    assert "resuming at epoch 2, step 2" in report
    # eval --task regenerates the same held-out images from the weights' config: the same mIoU as the run's
    deploy_miou = re.search(r"deploy form miou ([0-9.]+)", report)
    assert deploy_miou is not None
    weights = str(cut / "model_deploy.safetensors")
    assert main(["eval", "--task", "segmentation", "--weights", weights, "--workers", "0"]) == 0
    line = capsys.readouterr().out
    eval_miou = re.search(r"mIoU ([0-9.]+) %", line)
    assert "8 images at 64 px" in line and eval_miou is not None
    assert abs(float(eval_miou[1]) - float(deploy_miou[1])) < 0.01, (report, line)  # both printed rounded
    for name in ("model_last.safetensors", "model_deploy.safetensors"):
        expected, actual = load_file(tmp_path / "whole" / name), load_file(cut / name)
        assert expected.keys() == actual.keys()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)


class _Negated(nn.Module):
    """A wrong deploy form: the segmenter's logits negated (the least likely class wins)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.num_classes = model, model.num_classes

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        return {"out": -self.model(x)["out"]}


def test_a_deploy_form_that_scores_differently_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobilebone.tasks.training.segmentation import SegmentationTask

    monkeypatch.setattr(SegmentationTask, "deploy", lambda self, model: _Negated(model))
    out = tmp_path / "run"
    assert main(["train", *SEG, *TINY, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "deploy check failed" in err and "miou" in err
    assert not (out / "model_deploy.safetensors").exists()


def test_eval_task_refuses_weights_with_another_class_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = resolve_task_config("segmentation", "lraspp_mobilenetv4_conv_small", input_size=64)
    task = make_task(cfg)
    weights = tmp_path / "seg.safetensors"
    task.save_weights(task.build_model(cfg, 5), weights, cfg, ["c"] * 5, {})  # type: ignore[attr-defined]
    voc = _voc(tmp_path / "VOC2012", label=3)
    assert main(["eval", "--task", "segmentation", "--weights", str(weights), "--data", str(voc)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has 5 classes" in err and "has 21" in err and len(err.splitlines()) == 1


def test_wrong_task_data_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ([*DET, "--data", str(tmp_path)], "annotations/instances_train*.json"),
        ([*SEG, "--data", str(tmp_path)], "JPEGImages"),
        ([*SEG, "--data", str(tmp_path), "--data-layout", "coco"], "not a segmentation layout"),
        ([*DET, "--aux-loss"], "no auxiliary head"),
        (["--task", "detection", "--model", "mobileone_s0"], "unknown detection model"),
        (["--data-layout", "voc"], "is for --task"),
    ]
    for flags, expected in cases:
        assert main(["train", *flags, *TINY, "--out", str(tmp_path / "out")]) == 2, flags
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, (flags, err)


def _coco(root: Path) -> Path:
    """A COCO layout with one annotated and one unannotated image per split (category ids 1 and 3)."""
    (root / "annotations").mkdir(parents=True)
    for split in ("train", "val"):
        (root / f"{split}2017").mkdir()
        for name in ("a.jpg", "b.jpg"):
            Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(root / f"{split}2017" / name)
        data = {
            "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 3, "bbox": [5, 5, 20, 10], "area": 200, "iscrowd": 0}
            ],
            "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
        }
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(data))
    return root


def test_coco_layout_gives_detection_batches_and_class_names(tmp_path: Path) -> None:
    cfg = resolve_task_config(
        "detection", "ssdlite_mobileone_s0", str(_coco(tmp_path / "coco")), input_size=64
    )
    task = make_task(cfg)
    data = task.build_data(cfg)
    assert data.classes == ["background", "cat", "unused_2", "dog"]  # label = category id
    images, targets = task.collate([data.train[0], data.train[1]])
    assert [len(t["boxes"]) for t in targets] == [1, 0] and targets[0]["labels"].tolist() == [3]
    assert images[0].shape == (3, 40, 50)


def test_detection_scoring_reports_the_raw_output_difference_of_a_deploy_form() -> None:
    from mobilebone.tasks.factory import create_detector
    from mobilebone.tasks.reparam import reparameterize_task_model
    from mobilebone.training.distributed import DistInfo

    cfg = resolve_task_config("detection", "ssdlite_mobileone_s0", out="unused", input_size=64)
    task = make_task(cfg)
    torch.manual_seed(0)
    model = create_detector("ssdlite_mobileone_s0", num_classes=3, size=64).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so folding them changes the graph
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    images = [torch.rand(3, 64, 64), torch.rand(3, 50, 70)]
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 30.0, 30.0]]), "labels": torch.tensor([1])}] * 2
    deployed = reparameterize_task_model(model)
    same, fused = task.evaluate([model, deployed], [(images, targets)], DistInfo())
    assert same["max_logit_diff"] == 0.0 and 0.0 < fused["max_logit_diff"] < 1e-3  # rounding only
    with torch.no_grad():
        deployed.head.classification_head.module_list[0][-1].weight.add_(0.1)  # type: ignore[union-attr, index]
    broken = task.evaluate([model, deployed], [(images, targets)], DistInfo())[1]
    assert broken["max_logit_diff"] > 1e-2
