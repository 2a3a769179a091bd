"""Eval preprocessing (``mobilebone.transforms``) and ``mobilebone predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mobilebone
from mobilebone.checkpoints import save_native
from mobilebone.checkpoints.tags import all_tags
from mobilebone.cli.main import main
from mobilebone.cli.predict import class_names
from mobilebone.testing import randomize_batchnorm
from mobilebone.transforms import eval_transform

CLASSES = set(class_names(1000))


def make_image(path: Path, size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def test_class_list_is_imagenet() -> None:
    names = class_names(1000)
    assert (
        len(names) == 1000 and names[0] == "tench" and names[281] == "tabby" and names[999] == "toilet tissue"
    )
    assert class_names(3) == ["class 0", "class 1", "class 2"]


@pytest.mark.parametrize(
    "name",
    [
        "mobileone_s0.apple_in1k",
        "mobileone_s1.apple_in1k",
        "mobilenetv4_conv_small.e3600_r256_in1k",
        "mobilenetv4_conv_medium.e180_r384_in12k",
    ],
)
def test_eval_transform_equals_timms(name: str, tmp_path: Path) -> None:
    timm_data = pytest.importorskip("timm.data")
    cfg = all_tags()[name].cfg()
    theirs = timm_data.create_transform(
        input_size=cfg["input_size"],
        interpolation=cfg["interpolation"],
        mean=cfg["mean"],
        std=cfg["std"],
        crop_pct=cfg["crop_pct"],
        crop_mode="center",
    )
    for i, size in enumerate([(300, 200), (97, 411), (640, 480)]):
        image = Image.open(make_image(tmp_path / f"{i}.png", size, seed=i)).convert("RGB")
        ours = eval_transform(cfg)(image)
        assert ours.shape == cfg["input_size"]
        torch.testing.assert_close(ours, theirs(image), rtol=0, atol=1e-6)


def test_eval_transform_converts_modes_and_checks_cfg(tmp_path: Path) -> None:
    cfg = mobilebone.create_model("mobileone_s0").pretrained_cfg
    for mode in ("L", "RGBA", "P"):
        image = Image.open(make_image(tmp_path / f"{mode}.png", (50, 60), mode))
        assert eval_transform(cfg)(image).shape == (3, 224, 224)
    gray = eval_transform({**cfg, "input_size": (1, 32, 48)})(Image.open(tmp_path / "L.png"))
    assert gray.shape == (1, 32, 48)
    with pytest.raises(ValueError, match="crop_pct"):
        eval_transform({**cfg, "crop_pct": 0})
    with pytest.raises(ValueError, match="interpolation"):
        eval_transform({**cfg, "interpolation": "cubic-ish"})


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = randomize_batchnorm(mobilebone.create_model("mobileone_s0"), seed=2)
    return save_native(model, tmp_path_factory.mktemp("w") / "s0.safetensors", model_name="mobileone_s0")


def _predictions(out: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if not line.startswith("  "):
            current = line
            result[current] = []
        else:  # "  1. tabby    12.34 %"
            result[current].append(line.split(".", 1)[1].rsplit(None, 2)[0].strip())
    return result


def test_predict_prints_five_class_names_per_image(
    weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = [str(make_image(tmp_path / f"img{i}.png", (120 + 40 * i, 90), seed=i)) for i in range(3)]
    assert main(["predict", *images, "--weights", str(weights)]) == 0
    found = _predictions(capsys.readouterr().out)
    assert list(found) == images
    for names in found.values():
        assert len(names) == 5 and set(names) <= CLASSES


def test_predict_matches_the_model(weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = make_image(tmp_path / "x.png", (256, 256), seed=5)
    assert (
        main(["predict", str(image), "--weights", str(weights), "--model", "mobileone_s0", "--top-k", "1"])
        == 0
    )
    top = _predictions(capsys.readouterr().out)[str(image)]
    model = mobilebone.load_checkpoint(mobilebone.create_model("mobileone_s0"), weights).eval()
    with torch.no_grad():
        index = int(model(eval_transform(model.pretrained_cfg)(Image.open(image))[None]).argmax())
    assert top == [class_names(1000)[index]]


def test_predict_with_timm_weights_needs_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = mobilebone.create_model("mobileone_s0")
    path = tmp_path / "plain.pth"
    torch.save(model.state_dict(), path)
    image = str(make_image(tmp_path / "a.png", (64, 64)))
    assert main(["predict", image, "--weights", str(path)]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["predict", image, "--weights", str(path), "--model", "mobileone_s0"]) == 0
    assert len(_predictions(capsys.readouterr().out)[image]) == 5


@pytest.mark.parametrize("kind", ["missing", "not-an-image", "folder", "bad-weights"])
def test_predict_errors_are_one_line(
    kind: str, weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image, weight_arg, expected = str(make_image(tmp_path / "ok.png", (64, 64))), str(weights), ""
    if kind == "missing":
        image, expected = str(tmp_path / "nope.jpg"), "image not found"
    elif kind == "not-an-image":
        (tmp_path / "notes.png").write_text("just text")
        image, expected = str(tmp_path / "notes.png"), "cannot read"
    elif kind == "folder":
        image, expected = str(tmp_path), "not a file"
    else:
        (tmp_path / "bad.pth").write_bytes(b"\x80\x02garbage")
        weight_arg, expected = str(tmp_path / "bad.pth"), "corrupted"
    assert main(["predict", image, "--weights", weight_arg, "--model", "mobileone_s0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mobilebone predict: error:") and expected in err and "\n" not in err


def test_predict_with_fused_fine_tuned_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A fused 10-class checkpoint (`convert --deploy` of a fine-tune): the model is built from it.
    model = randomize_batchnorm(mobilebone.create_model("mobileone_s0", num_classes=10), seed=4)
    fused = mobilebone.reparameterize_model(model)
    weights = save_native(fused, tmp_path / "s0_10.safetensors", model_name="mobileone_s0")
    image = make_image(tmp_path / "x.png", (96, 80), seed=6)
    assert main(["predict", str(image), "--weights", str(weights), "--top-k", "1"]) == 0
    names = _predictions(capsys.readouterr().out)[str(image)]
    with torch.no_grad():
        index = int(fused.eval()(eval_transform(fused.pretrained_cfg)(Image.open(image))[None]).argmax())
    assert names == [f"class {index}"]
