"""The ``train`` command line: flags generated from TrainConfig, validation, resume flag rules."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import pytest

from mobilebone.cli import train as train_cli
from mobilebone.cli.main import build_parser, main
from mobilebone.training import checkpointing as ckpt
from mobilebone.training.config import TrainConfig, resolve_config, validate

# A value for each field that differs from TrainConfig's default, as text on the command line.
_SAMPLE = {
    "model": (["mobilenetv4_conv_small"], "mobilenetv4_conv_small"),
    "data": (["/some/dir"], "/some/dir"),
    "out": (["/runs/x"], "/runs/x"),
    "betas": (["0.5", "0.75"], [0.5, 0.75]),
    "lr": (["0.375"], 0.375),
    "weight_decay_end": (["none"], None),
    "channels_last": (None, False),  # --no-channels-last
    "skip_bad_images": (None, True),  # --skip-bad-images
    "data_layout": (["coco"], "coco"),
    "backbone_weights": (["w.safetensors"], "w.safetensors"),
    "aux_loss": (None, True),  # --aux-loss
}


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _sample(name: str, hint: Any, default: Any) -> tuple[list[str], Any]:
    if name in _SAMPLE:
        return _SAMPLE[name]
    if get_origin(hint) is Literal:
        choice = next(c for c in get_args(hint) if c != default)
        return [choice], choice
    if hint is int:
        return [str(default + 3)], default + 3
    if hint is float:
        return [str(default + 0.125)], default + 0.125
    raise AssertionError(f"no sample value for {name}: {hint}")


def test_every_setting_has_a_flag_that_sets_it() -> None:
    parser, hints = _train_parser(), get_type_hints(TrainConfig)
    settings = [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("flag", True) is not False]
    assert {f.name for f in dataclasses.fields(TrainConfig)} - {f.name for f in settings} == {"notes"}
    for f in settings:
        flag = "--" + f.name.replace("_", "-")
        text, expected = _sample(f.name, hints[f.name], f.default)
        # booleans (no text): --x / --no-x
        argv = [flag if expected else "--no-" + flag[2:]] if text is None else [flag, *text]
        args = parser.parse_args(argv)
        assert getattr(args, f.name) == expected, flag
        assert train_cli.overrides_from(args) == {f.name: expected}, flag
        assert f.metadata["help"], flag


def test_enumerated_settings_offer_their_choices() -> None:
    parser, hints = _train_parser(), get_type_hints(TrainConfig)
    by_dest = {a.dest: a for a in parser._actions}
    for name in ("optimizer", "lr_scaling", "amp", "augment", "interpolation", "recipe"):
        assert get_origin(hints[name]) is Literal
        assert list(by_dest[name].choices or []) == list(get_args(hints[name])), name
    with pytest.raises(SystemExit):
        parser.parse_args(["--interpolation", "lanczos9"])


@pytest.mark.parametrize(
    ("override", "flag"),
    [
        ({"lr": float("inf")}, "--lr"),
        ({"lr_base": float("inf")}, "--lr-base"),
        ({"momentum": float("nan")}, "--momentum"),
        ({"weight_decay_end": float("nan")}, "--weight-decay-end"),
        ({"betas": (0.9, float("nan"))}, "--betas"),
        ({"lr": -0.1}, "--lr"),
        ({"lr_base": 0.0}, "--lr-base"),
        ({"momentum": 1.0}, "--momentum"),
        ({"betas": (0.9, 1.0)}, "--betas"),
        ({"weight_decay": -1e-4}, "--weight-decay"),
        ({"weight_decay_end": -1e-5}, "--weight-decay-end"),
        ({"grad_clip": -1.0}, "--grad-clip"),
        ({"epochs": 0}, "--epochs"),
        ({"batch_size": 0}, "--batch-size"),
        ({"embedded_train": 0}, "--embedded-train"),
        ({"embedded_val": 0}, "--embedded-val"),
        ({"embedded_classes": 1}, "--embedded-classes"),
        ({"input_size": 100000}, "--input-size"),
        ({"input_size": -1}, "--input-size"),
        ({"min_lr": -1.0}, "--min-lr"),
        ({"drop_path": 1.0}, "--drop-path"),
        ({"log_every": 0}, "--log-every"),
        ({"deploy_tolerance": -1.0}, "--deploy-tolerance"),
        ({"seed": -3}, "--seed"),
    ],
)
def test_bad_numbers_are_refused_naming_the_flag(override: dict[str, Any], flag: str) -> None:
    with pytest.raises(ValueError, match=f"^{flag} ") as caught:
        resolve_config("mobileone_s0", None, **override)
    assert len(str(caught.value).splitlines()) == 1


def test_bad_numbers_on_the_command_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "--out", str(tmp_path / "r"), "--lr", "inf"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "mobilebone train: error: --lr must be a finite number, got inf"
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_one_class_image_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    for split in ("train", "val"):
        (tmp_path / "data" / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "data" / split / "cat" / "a.png")
    assert (
        main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "r"), "--epochs", "1"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "at least 2" in err and len(err.splitlines()) == 1


def _saved_run(out: Path, **overrides: Any) -> TrainConfig:
    cfg = resolve_config("mobileone_s0", None, out=str(out), **overrides)
    ckpt.save_state(out / ckpt.RESUME_FILE, {"config": cfg.to_json()})
    return cfg


def test_resume_accepts_the_same_flags_and_refuses_changed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    _saved_run(out, epochs=3, lr=0.05, betas=(0.5, 0.9), weight_decay_end=None)
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        "mobilebone.training.loop.train", lambda cfg, resume=False, **kw: calls.append((cfg.out, resume))
    )
    same = ["--epochs", "3", "--lr", "0.05", "--betas", "0.5", "0.9", "--weight-decay-end", "none"]
    assert main(["train", "--out", str(out), *same, "--model", "mobileone_s0", "--resume"]) == 0
    assert calls == [(str(out), True)]  # the original command with --resume added continues the run

    assert main(["train", "--out", str(out), "--resume", "--epochs", "30", "--lr", "0.05"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--epochs (saved: 3, given: 30)" in err and "--lr (saved" not in err  # --lr 0.05 is unchanged
    assert len(err.splitlines()) == 1 and len(calls) == 1


def test_out_and_resume_naming_different_folders_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _saved_run(a)
    _saved_run(b)
    assert main(["train", "--out", str(a), "--resume", str(b)]) == 2
    err = capsys.readouterr().err
    assert "name different run folders" in err and str(a) in err and str(b) in err
    calls: list[str] = []
    monkeypatch.setattr("mobilebone.training.loop.train", lambda cfg, **kw: calls.append(cfg.out))
    assert main(["train", "--resume", str(b)]) == 0  # --resume DIR alone: that folder
    assert main(["train", "--out", str(b), "--resume", str(b / ckpt.RESUME_FILE)]) == 0  # the same folder
    assert calls == [str(b), str(b)]


def test_validate_accepts_the_recipes() -> None:
    for model, data in (("mobileone_s0", None), ("mobileone_s3", "/d"), ("mobilenetv4_conv_small", "/d")):
        validate(resolve_config(model, data))
