"""Quantization-aware fine-tuning: fake quantization is inserted and trained, the int8 program runs and is
compared with float32, and the CLI's flag checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mobilebone

pytest.importorskip("executorch")
pytest.importorskip("torchao")


@pytest.fixture(autouse=True)
def _one_block_per_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """MobileOne-S0's blocks and widths, one block per stage (9 convolutions, not 43): ExecuTorch's lowering
    time grows with the graph, and every op kind QAT must handle is still there."""
    monkeypatch.setattr("mobilebone.models.mobileone.DEPTHS", (1, 1, 1, 1))


def _weights(tmp_path: Path) -> Path:
    """A tiny `mobilebone train`-style checkpoint: one-block-per-stage MobileOne-S0, 10 classes, 32 px, a few embedded images."""
    from mobilebone.checkpoints import save_native
    from mobilebone.training.config import resolve_config

    cfg = resolve_config(
        "mobileone_s0",
        None,
        input_size=32,
        batch_size=4,
        embedded_classes=10,
        embedded_train=16,
        embedded_val=8,
        out=str(tmp_path / "run"),
    )
    torch.manual_seed(0)
    model = mobilebone.create_model("mobileone_s0", num_classes=10).eval()
    metadata = {"classes": json.dumps([str(i) for i in range(10)]), "training_config": cfg.to_json()}
    return save_native(
        model, tmp_path / "model_best.safetensors", model_name="mobileone_s0", metadata=metadata
    )


def test_prepare_qat_inserts_fake_quantization_that_changes_the_output() -> None:
    from mobilebone.export.prepare import prepare_for_export
    from mobilebone.training.qat import count_fake_quant, prepare_qat

    torch.manual_seed(0)
    deploy = prepare_for_export(mobilebone.create_model("mobileone_s0", num_classes=3))
    x = torch.randn(2, 3, 32, 32)
    prepared = prepare_qat(deploy, x[:1])
    # One weight fake-quantizer per conv / linear, plus the activations'.
    convs = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in deploy.modules())
    assert count_fake_quant(prepared) > convs
    prepared(x)  # observers see data, then the output is the rounded one
    with torch.no_grad():
        assert not torch.equal(prepared(x[:1]), deploy(x[:1]))


def test_finetune_writes_a_running_int8_program_and_scores_agreement(tmp_path: Path) -> None:
    from mobilebone.training.qat import finetune

    weights = _weights(tmp_path)
    report = finetune(weights, tmp_path / "qat", max_steps=2, num_held_out=4, num_calibration=4, threads=1)
    assert report.steps == 2 and report.fake_quant_modules > 0
    assert Path(report.artifact).is_file() and Path(report.artifact).suffix == ".pte"
    assert report.num_held_out == 4
    for value in (report.top1_agreement_qat, report.top1_agreement_ptq, *report.accuracy.values()):
        assert 0.0 <= value <= 1.0
    saved = json.loads((tmp_path / "qat" / "qat_report.json").read_text())
    assert saved["top1_agreement_qat"] == report.top1_agreement_qat


def test_cli_qat_flag_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from mobilebone.cli.main import main

    assert main(["train", "--qat"]) == 2
    assert "--qat needs --weights" in capsys.readouterr().err
    assert main(["train", "--weights", "x.safetensors"]) == 2
    assert "only used with --qat" in capsys.readouterr().err
    assert main(["train", "--qat", "--weights", str(tmp_path / "none.safetensors")]) == 2
    assert "no such file" in capsys.readouterr().err
