"""Faults a run must survive or report in one line: a deploy form that disagrees, a non-finite loss, bad images."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mobilebone.cli.main import main
from mobilebone.training import checkpointing as ckpt
from mobilebone.training.classification import ClassificationTask
from mobilebone.training.deploy_check import DeployCheck, verify
from mobilebone.training.errors import DeployMismatchError
from mobilebone.training.synthetic import SyntheticShapes

TINY = ["--input-size", "32", "--batch-size", "8", "--embedded-train", "32", "--embedded-val", "16"]
TINY += ["--workers", "0", "--epochs", "1", "--ema-decay", "0"]


def _last_line(err: str) -> str:
    return err.strip().splitlines()[-1]  # after the progress bar, if any


# ---- the deploy check


def test_deploy_check_compares_against_the_stated_tolerance() -> None:
    model = nn.Identity()
    verify(DeployCheck(model, {"top1": 90.0}, {"top1": 89.6}, "top1", 0.5))  # within: passes
    with pytest.raises(DeployMismatchError) as caught:
        verify(DeployCheck(model, {"top1": 90.0}, {"top1": 89.0}, "top1", 0.5))
    message = str(caught.value)
    assert "89" in message and "90" in message and "tolerance 0.5" in message
    with pytest.raises(DeployMismatchError):  # a NaN score never passes
        verify(DeployCheck(model, {"top1": 90.0}, {"top1": float("nan")}, "top1", 0.5))


class _Negated(nn.Module):
    """A deploy model that is deliberately not the trained one: it ranks the classes backwards."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.inner(x)


def test_a_deploy_form_that_scores_differently_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ClassificationTask.deploy
    state = {"calls": 0}

    def deploy(self: ClassificationTask, model: nn.Module) -> nn.Module:
        state["calls"] += 1
        deployed = real(self, model)
        # Epoch-end scoring stays honest; only the final deploy model (the last call) is broken.
        return _Negated(deployed) if state["calls"] > 1 else deployed

    monkeypatch.setattr(ClassificationTask, "deploy", deploy)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *TINY, "--deploy-tolerance", "0"]) == 2
    err = _last_line(capsys.readouterr().err)
    assert err.startswith(
        "mobilebone train: error: deploy check failed: the reparameterized model scores top1"
    )
    assert "tolerance 0)" in err and "train-time form scores" in err
    assert (out / "model_best.safetensors").is_file() and not (out / "model_deploy.safetensors").exists()


# ---- a loss that becomes non-finite


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ClassificationTask.loss
    calls = {"n": 0}

    def loss(self: ClassificationTask, model: nn.Module, batch: Any, device: torch.device) -> Any:
        calls["n"] += 1
        value, n = real(self, model, batch, device)
        return (value * float("nan") if calls["n"] >= 3 else value), n  # step 3 diverges

    monkeypatch.setattr(ClassificationTask, "loss", loss)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *TINY, "--checkpoint-every", "2"]) == 2
    err = _last_line(capsys.readouterr().err)
    assert "loss became non-finite" in err and "at step 3" in err and "is intact" in err
    state = ckpt.load_state(out)  # the step-2 checkpoint, untouched by the NaN weights
    assert state["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (out / "model_best.safetensors").exists()


# ---- unreadable images


def _bomb_png(path: Path, side: int = 50_000) -> None:
    """A valid PNG header announcing ``side``×``side`` pixels (a decompression bomb), with no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")
    )


def _image_folder(root: Path) -> None:
    pool = SyntheticShapes("train", 60, seed=1)
    counts: dict[str, int] = {}
    for i in range(len(pool)):
        name = pool.classes[pool.targets[i]]
        if name not in pool.classes[:2]:
            continue
        rank = counts[name] = counts.get(name, 0) + 1
        if rank <= 6:
            folder = root / ("train" if rank <= 4 else "val") / name
            folder.mkdir(parents=True, exist_ok=True)
            pool[i][0].save(folder / f"{i}.png")


@pytest.mark.parametrize(
    ("split", "kind", "workers"),
    [("train", "corrupt", 0), ("train", "corrupt", 2), ("val", "corrupt", 0), ("train", "bomb", 0)],
)
def test_an_unreadable_image_stops_with_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], split: str, kind: str, workers: int
) -> None:
    data = tmp_path / "data"
    _image_folder(data)
    classes = sorted(p.name for p in (data / split).iterdir())
    bad = data / split / classes[0] / "zz_bad.png"
    if kind == "bomb":
        _bomb_png(bad)
    else:
        bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    args = ["--data", str(data), "--input-size", "32", "--batch-size", "4", "--epochs", "1"]
    code = main(["train", "--out", str(tmp_path / "run"), *args, "--workers", str(workers)])
    assert code == 2
    err = _last_line(capsys.readouterr().err)
    assert err.startswith(f"mobilebone train: error: {bad}: ")
    assert ("decompression bomb" if kind == "bomb" else "cannot decode image") in err
    assert "Traceback" not in capsys.readouterr().err


def test_skip_bad_images_counts_them_and_trains_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    _image_folder(data)
    classes = sorted(p.name for p in (data / "train").iterdir())
    (data / "train" / classes[0] / "zz_bad.png").write_bytes(b"garbage")
    _bomb_png(data / "val" / classes[1] / "zz_bomb.png")
    args = ["--data", str(data), "--input-size", "32", "--batch-size", "4", "--epochs", "1", "--workers", "2"]
    assert main(["train", "--out", str(tmp_path / "run"), *args, "--skip-bad-images"]) == 0
    printed = capsys.readouterr().out
    assert "warning: skipped 1 unreadable image(s) in epoch 1's training images" in printed
    assert "warning: skipped 1 unreadable image(s) in the validation images" in printed
    assert (tmp_path / "run" / "model_deploy.safetensors").is_file()
