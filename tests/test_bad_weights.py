"""Bad or unusual weights and images given to predict / eval / convert: one clear line, never a wrong answer."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import mobilebone
from mobilebone.checkpoints import CheckpointError, read_metadata, save_native
from mobilebone.cli.main import main

CLASSES = ["cat", "dog", "fox"]
SIZE = 32


def _image(path: Path, seed: int = 0) -> Path:
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(40, 48, 3, generator=generator) * 255).to(torch.uint8).numpy()
    Image.fromarray(pixels).save(path)
    return path


def _always(model: torch.nn.Module, index: int) -> torch.nn.Module:
    """Make the classifier predict class ``index`` for every image (zero weights, one-hot bias)."""
    fc = model.head.fc  # type: ignore[union-attr]
    with torch.no_grad():
        fc.weight.zero_()
        fc.bias.zero_()
        fc.bias[index] = 10.0
    return model


def _weights(path: Path, *, classes: list[str] | None = CLASSES, predicts: int = 2) -> Path:
    """A 3-class MobileOne-S0 at 32 px that always predicts ``predicts``, recording ``classes`` if given."""
    model = _always(mobilebone.create_model("mobileone_s0", num_classes=3), predicts)
    model.pretrained_cfg.update(input_size=(3, SIZE, SIZE), crop_pct=1.0)  # type: ignore[union-attr]
    metadata = {"classes": json.dumps(classes)} if classes is not None else None
    return save_native(model, path, model_name="mobileone_s0", metadata=metadata)


def _edited(src: Path, dst: Path, *, tensors: dict | None = None, **metadata: str) -> Path:  # type: ignore[type-arg]
    """A copy of ``src`` with some tensors or metadata fields replaced (as a damaged or edited file)."""
    state = {**load_file(str(src)), **(tensors or {})}
    save_file(state, str(dst), metadata={**read_metadata(src), **metadata})
    return dst


def _folder(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(2):
            _image(root / name / f"{i}.png", seed=i)
    return root


def _error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mobilebone {command}: error:") and "\n" not in err, err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------------------- class names of the weights


def test_eval_matches_folders_by_the_weights_class_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = _weights(tmp_path / "w.safetensors")  # always predicts "fox"
    # Sorted folder order puts "fox" at index 1 ("cat", "fox"): by order every image would be wrong.
    data = _folder(tmp_path / "data", ["cat", "fox"])
    for name in ("cat",):
        for image in (data / name).iterdir():
            image.unlink()
        _image(data / name / "x.png")  # keep one "cat" image, predicted "fox": top-1 is 2 of 3
    assert main(["eval", "--weights", str(weights), "--data", str(data), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "matched by name" in out
    assert "top-1 66.67 %" in out, out


def test_eval_names_an_unknown_class_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = _weights(tmp_path / "w.safetensors")
    data = _folder(tmp_path / "data", ["cat", "zebra"])
    assert main(["eval", "--weights", str(weights), "--data", str(data), "--workers", "0"]) == 2
    assert "class folder 'zebra' is not one of the weights' 3 classes" in _error(capsys, "eval")


def test_eval_without_recorded_names_matches_by_order_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = _weights(tmp_path / "w.safetensors", classes=None, predicts=1)
    data = _folder(tmp_path / "data", ["a", "b", "c"])
    assert main(["eval", "--weights", str(weights), "--data", str(data), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "matched by sorted order" in out and "top-1 33.33 %" in out, out


def test_predict_prints_the_weights_own_class_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = _weights(tmp_path / "w.safetensors")
    image = _image(tmp_path / "x.png")
    assert main(["predict", str(image), "--weights", str(weights), "--top-k", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1] == "fox"


def test_eval_embedded_val_zero_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = _weights(tmp_path / "w.safetensors")
    assert main(["eval", "--weights", str(weights), "--embedded-val", "0"]) == 2
    assert "--embedded-val must be >= 1" in _error(capsys, "eval")


# ------------------------------------------------------------------------------------ damaged weights


def _command(command: str, weights: Path, tmp_path: Path) -> list[str]:
    image = str(_image(tmp_path / "x.png"))
    return {
        "predict": ["predict", image, "--weights", str(weights)],
        "eval": ["eval", "--weights", str(weights), "--embedded-val", "4"],
        "convert": ["convert", str(weights), str(tmp_path / "out.safetensors")],
    }[command]


@pytest.mark.parametrize("command", ["predict", "eval", "convert"])
def test_weights_with_nan_or_inf_are_refused_naming_the_tensor(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _weights(tmp_path / "w.safetensors")
    weight = load_file(str(good))["stages.1.0.conv_kxk.0.conv.weight"].clone()
    weight[0, 0, 0, 0] = float("nan")
    weight[1, 0, 0, 0] = float("inf")
    bad = _edited(good, tmp_path / "nan.safetensors", tensors={"stages.1.0.conv_kxk.0.conv.weight": weight})
    assert main(_command(command, bad, tmp_path)) == 2
    err = _error(capsys, command)
    assert "tensor stages.1.0.conv_kxk.0.conv.weight holds 2 non-finite values" in err
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("config", "{not json", "metadata field 'config' is not valid JSON"),
        ("classes", "[cat, dog", "metadata field 'classes' is not valid JSON"),
        ("classes", '["cat"]', "metadata field 'classes' lists 1 entries for 3 classes"),
    ],
)
def test_metadata_that_is_not_valid_json_is_refused_naming_the_field(
    field: str, value: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _edited(_weights(tmp_path / "w.safetensors"), tmp_path / "bad.safetensors", **{field: value})
    assert main(_command("predict", bad, tmp_path)) == 2
    assert expected in _error(capsys, "predict")


def test_absurd_recorded_input_size_is_refused_before_allocating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _weights(tmp_path / "w.safetensors")
    config = json.loads(read_metadata(good)["config"])
    config["pretrained_cfg"]["input_size"] = [3, 100000, 100000]
    bad = _edited(good, tmp_path / "huge.safetensors", config=json.dumps(config))
    assert main(_command("predict", bad, tmp_path)) == 2
    assert "input_size (3, 100000, 100000); sides must be 1 to 2048 px" in _error(capsys, "predict")


def test_a_pth_renamed_safetensors_is_read_by_its_content(tmp_path: Path) -> None:
    model = mobilebone.create_model("mobileone_s0", num_classes=3)
    path = tmp_path / "really_a_pth.safetensors"
    torch.save(model.state_dict(), path)
    loaded = mobilebone.load_checkpoint(mobilebone.create_model("mobileone_s0", num_classes=3), path)
    torch.testing.assert_close(loaded.state_dict(), model.state_dict(), rtol=0, atol=0)
    assert read_metadata(path) == {}


def test_a_training_resume_checkpoint_is_refused_with_the_file_to_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobilebone.checkpoints.io import TRAIN_STATE_FORMAT
    from mobilebone.training.checkpointing import RESUME_FILE, STATE_FORMAT, save_state

    assert TRAIN_STATE_FORMAT == STATE_FORMAT
    model = mobilebone.create_model("mobileone_s0", num_classes=3)
    path = save_state(tmp_path / RESUME_FILE, {"config": "{}", "model": model.state_dict(), "ema": {}})
    for argv in (
        ["predict", str(_image(tmp_path / "x.png")), "--weights", str(path)],
        ["convert", str(path), str(tmp_path / "o.safetensors")],
    ):
        assert main(argv) == 2
        err = _error(capsys, argv[0])
        assert "training-resume checkpoint" in err and "model_best.safetensors" in err


# ------------------------------------------------------------------------------------------- images


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels (and holds no pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("bomb", "too large to decode safely"), ("text", "cannot read"), ("bytes", "cannot read")],
)
def test_bad_images_give_one_line(
    kind: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = _weights(tmp_path / "w.safetensors")
    path = tmp_path / "in.png"
    if kind == "bomb":
        _png_header(path, 50000, 50000)
    elif kind == "text":
        path.write_text("not an image\n")
    else:
        path.write_bytes(bytes(range(256)) * 8)
    assert main(["predict", str(path), "--weights", str(weights)]) == 2
    assert expected in _error(capsys, "predict")


# ------------------------------------------------------------------------------------- where to write


def test_convert_to_a_path_through_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = _weights(tmp_path / "w.safetensors")
    (tmp_path / "afile").write_text("x")
    assert main(["convert", str(weights), str(tmp_path / "afile" / "out.safetensors")]) == 2
    assert "is a file, not a folder" in _error(capsys, "convert")
    assert main(["convert", str(weights), str(tmp_path / "afile" / "deeper" / "out.safetensors")]) == 2
    assert "is a file, not a folder" in _error(capsys, "convert")


def test_convert_to_a_read_only_target_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = _weights(tmp_path / "w.safetensors")
    target = tmp_path / "out.safetensors"
    target.write_bytes(b"previous")
    # The superuser may write read-only files, so the check is exercised with access() saying no.
    import os

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == target else real_access(p, mode))
    assert main(["convert", str(weights), str(target)]) == 2
    assert "permission denied" in _error(capsys, "convert")
    assert target.read_bytes() == b"previous"


# ------------------------------------------------------------------------------------ offline advice


def test_offline_weight_tag_advice_fits_the_caller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda **kwargs: None)
    monkeypatch.setattr(huggingface_hub, "is_offline_mode", lambda: True)
    with pytest.raises(CheckpointError) as info:
        mobilebone.create_model("mobileone_s0", pretrained=True)
    python = str(info.value)
    assert "create_model('mobileone_s0', pretrained='/path/to/model.safetensors')" in python
    assert "--weights" not in python
    image = str(_image(tmp_path / "x.png"))
    assert main(["predict", image, "--weights", "mobileone_s0.apple_in1k"]) == 2
    cli = _error(capsys, "predict")
    assert "--weights /path/to/model.safetensors" in cli and "create_model" not in cli
