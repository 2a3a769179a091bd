"""torch.hub and Hugging Face Hub round trips, offline: a local clone, a local folder, a stand-in HfApi.

Weights cross in both directions between mobilebone and timm on all ten models and give the same logits.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import mobilebone
from mobilebone import create_model, list_models, reparameterize_model
from mobilebone.checkpoints import save_native
from mobilebone.hub_publish import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, save_for_hub, to_timm_state_dict
from mobilebone.testing import randomize_batchnorm

timm = pytest.importorskip("timm")

ROOT = Path(__file__).resolve().parents[1]
ALL_MODELS = list_models()
SIZE = 64
CLASSES = 5


@functools.cache
def _trained(name: str) -> nn.Module:
    """A train-time model with a 5-class head and non-trivial BatchNorm statistics (never mutated)."""
    return randomize_batchnorm(create_model(name, num_classes=CLASSES), seed=5).eval()


def _x() -> torch.Tensor:
    return torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(13))


def _logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(_x())


# ------------------------------------------------------------------------------------------ torch.hub


def test_hubconf_has_one_lazy_entry_point_per_model() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    assert spec is not None and spec.loader is not None
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    # torch.hub's rule for entry points: public callables of hubconf.py
    entries = [n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_")]
    assert sorted(entries) == ALL_MODELS and hubconf.dependencies == ["torch"]
    model = torch.hub.load(str(ROOT), "mobileone_s0", source="local", pretrained=False, num_classes=3)
    assert isinstance(model, nn.Module) and _logits(model).shape == (2, 3)


def test_torch_hub_load_from_a_fresh_clone(tmp_path: Path) -> None:
    """Only the files a clone has (hubconf.py, src/); the package is imported from the clone's src/."""
    clone = tmp_path / "mobilebone"
    clone.mkdir()
    shutil.copy(ROOT / "hubconf.py", clone / "hubconf.py")
    shutil.copytree(ROOT / "src", clone / "src", ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        "import torch; m = torch.hub.load('.', 'mobilenetv4_conv_small', source='local'); "
        "import mobilebone; print(type(m).__name__, mobilebone.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=clone, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    kind, source = done.stdout.split()
    assert kind == "MobileNetV4" and Path(source).is_relative_to(clone)


# ------------------------------------------------------------------------------ mobilebone → timm


@pytest.mark.parametrize("name", ALL_MODELS)
def test_hub_folder_loads_in_timm_and_in_mobilebone(name: str, tmp_path: Path, monkeypatch: Any) -> None:
    ours = _trained(name)
    folder = save_for_hub(ours, tmp_path / "repo", repo_id="me/repo")
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG_FILE, WEIGHTS_FILE, CARD_FILE])
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["architecture"] == name and config["num_classes"] == CLASSES
    assert config["num_features"] == ours.num_features
    expected = _logits(ours)
    # timm reads the folder as it reads a Hub repository (config.json + model.safetensors).
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True)
    torch.testing.assert_close(_logits(theirs), expected)
    # mobilebone's hf-hub: loader, with hf_hub_download served from the folder (no network).
    import huggingface_hub

    asked: list[tuple[str, str]] = []

    def fake_download(repo_id: str, filename: str, **_: Any) -> str:
        asked.append((repo_id, filename))
        return str(folder / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    loaded = create_model("hf-hub:me/repo")
    assert {f for _, f in asked} == {CONFIG_FILE, WEIGHTS_FILE} and {r for r, _ in asked} == {"me/repo"}
    torch.testing.assert_close(_logits(loaded), expected)
    assert loaded.pretrained_cfg["hf_hub_id"] == "me/repo"
    deploy = create_model("hf-hub:me/repo", deploy=True)
    torch.testing.assert_close(_logits(deploy), _logits(reparameterize_model(ours)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["mobileone_s0", "mobileone_s4"])
def test_fused_mobileone_checkpoint_loads_in_timms_fused_model(name: str, tmp_path: Path) -> None:
    """A fused native file → timm's reparameterized MobileOne (timm has no fused MobileNetV4)."""
    from safetensors.torch import load_file
    from timm.utils import reparameterize_model as timm_reparameterize

    fused = reparameterize_model(_trained(name))
    path = save_native(fused, tmp_path / "fused.safetensors", model_name=name)
    theirs = timm_reparameterize(timm.create_model(name, num_classes=CLASSES))
    theirs.load_state_dict(to_timm_state_dict(load_file(str(path)), name), strict=True)
    torch.testing.assert_close(_logits(theirs), _logits(fused))


def test_fused_model_is_not_pushed(tmp_path: Path) -> None:
    fused = create_model("mobilenetv4_conv_small", deploy=True)
    with pytest.raises(ValueError, match="push the train-time model"):
        save_for_hub(fused, tmp_path / "repo")
    assert not (tmp_path / "repo" / WEIGHTS_FILE).exists()


# ------------------------------------------------------------------------------ timm → mobilebone


@pytest.mark.parametrize("name", ALL_MODELS)
def test_timm_weights_load_into_both_forms(name: str) -> None:
    theirs = randomize_batchnorm(timm.create_model(name, num_classes=CLASSES), seed=6).eval()
    expected = _logits(theirs)
    train = mobilebone.load_checkpoint(create_model(name, num_classes=CLASSES), theirs.state_dict())
    torch.testing.assert_close(_logits(train), expected)
    fused = mobilebone.load_checkpoint(
        create_model(name, num_classes=CLASSES, deploy=True), theirs.state_dict()
    )
    torch.testing.assert_close(_logits(fused), expected, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- push_to_hub and CLI


class FakeHfApi:
    """Records calls and keeps a copy of the uploaded folder, as the Hub would."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id: str, folder_path: str, **kwargs: Any) -> None:
        self.calls.append(("upload_folder", {"repo_id": repo_id, **kwargs}))
        shutil.copytree(folder_path, self.store / repo_id, dirs_exist_ok=True)


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    save_native(_trained("mobileone_s0"), run / "model_best.safetensors", model_name="mobileone_s0")
    (run / "config.json").write_text(json.dumps({"model": "mobileone_s0", "lr": 0.05, "epochs": 7}))
    (run / "metrics.csv").write_text("epoch,val_top1\n0,41.25\n1,73.125\n")
    return run


def test_push_to_hub_uploads_timm_layout_and_model_card(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    api = FakeHfApi(tmp_path / "hub")
    url = mobilebone.push_to_hub(_trained("mobileone_s0"), "me/s0-run", run_dir=run, private=True, api=api)
    assert url == "https://huggingface.co/me/s0-run"
    assert [c for c, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1]["private"] is True and api.calls[0][1]["exist_ok"] is True
    repo = tmp_path / "hub" / "me" / "s0-run"
    card = (repo / CARD_FILE).read_text()
    assert "73.125" in card and "| lr | 0.05 |" in card and 'hf-hub:me/s0-run"' in card
    theirs = timm.create_model(f"local-dir:{repo}", pretrained=True)
    torch.testing.assert_close(_logits(theirs), _logits(_trained("mobileone_s0")))
    with pytest.raises(ValueError, match="owner/name"):
        mobilebone.push_to_hub(_trained("mobileone_s0"), "no-owner", api=api)


def test_cli_push_hub(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    import huggingface_hub

    from mobilebone.cli.main import main

    run = _run_dir(tmp_path)
    fake = FakeHfApi(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda **_: fake)
    assert main(["push-hub", str(run), "me/cli-run"]) == 0
    assert "https://huggingface.co/me/cli-run" in capsys.readouterr().out
    repo = tmp_path / "hub" / "me" / "cli-run"
    torch.testing.assert_close(
        _logits(timm.create_model(f"local-dir:{repo}", pretrained=True)), _logits(_trained("mobileone_s0"))
    )
    assert main(["push-hub", str(run), "me/x", "--local-dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / WEIGHTS_FILE).is_file()
    assert main(["push-hub", str(tmp_path / "missing"), "me/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mobilebone push-hub: error:") and err.count("\n") == 1


def test_hf_hub_name_keeps_the_callers_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``create_model("hf-hub:…", num_classes=…, features_only=…)`` honours the caller like a registry name."""
    import huggingface_hub

    from mobilebone import create_model
    from mobilebone.hub_publish import save_for_hub

    folder = save_for_hub(create_model("mobileone_s0", num_classes=7), tmp_path / "repo", repo_id="me/s0")

    def fake_download(repo_id: str, filename: str, **_: Any) -> str:
        return str(folder / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert create_model("hf-hub:me/s0").num_classes == 7
    assert create_model("hf-hub:me/s0", num_classes=3).num_classes == 3
    feats = create_model("hf-hub:me/s0", features_only=True, out_indices=(1,))
    assert [f.shape[1] for f in feats(torch.rand(1, 3, 64, 64))] == [feats.feature_info.channels()[0]]
