"""Checkpoints: timm / Apple / native formats load strictly and give timm's logits; bad files fail clearly."""

from __future__ import annotations

import functools
import json
import os
import pickle
import random
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor, nn

import mobilebone
from mobilebone.checkpoints import CheckpointError, read_metadata, save_native
from mobilebone.checkpoints.io import read_checkpoint
from mobilebone.checkpoints.tags import all_tags
from mobilebone.cli.main import main
from mobilebone.testing import (
    calibrate_batchnorm,
    max_relative_error,
    randomize_batchnorm,
    randomize_layer_scale,
)

try:
    import timm
except ImportError:  # the safety, corrupt-file and native-format tests below need only mobilebone
    timm = None
# Tests that compare with timm's implementation or need its layouts.
needs_timm = pytest.mark.skipif(timm is None, reason="needs timm (the reference implementation)")

MODELS = mobilebone.list_models()
MOBILEONE = [m for m in MODELS if m.startswith("mobileone")]
MNV4 = [m for m in MODELS if m.startswith("mobilenetv4")]
# Comparisons run in float64, where ours and timm agree to ~1e-13 (float32 rounding alone moves these
# random networks' logits by up to ~2e-4): far inside the 1e-5 equivalence bound of the fusion tests, and tight enough to catch any slip.
TOL = 1e-9
# Where the library itself computes in float32 (fusion inside `convert` or `create_model`), the fused
# float32 weights are rounded: measured ≤ 2.5e-4 (MobileOne-S4), ≤ 1e-4 for the models used below.
F32_TOL = 1e-3
SIZE = 64  # small inputs keep the suite fast; every model takes ≥ 32 px


@functools.lru_cache(maxsize=2)
def timm_reference(arch: str) -> tuple[nn.Module, nn.Module | None, Tensor]:
    """timm model (seeded random init, randomized BN and layer scale, BN calibrated on the input), its
    reparameterized form (MobileOne only), and the input; all in float64.

    Without calibration and layer scale the hybrids' attention barely mattered (γ = 1e-5) and S4's
    Squeeze-Excite saturated (activations ~5e6); ``test_reference_depends_on_every_kind_of_block`` checks
    that these blocks now move the logits. The train-time weights are rounded to float32, so the state
    dict is a realistic float32 checkpoint that loads exactly into a model of either dtype.
    """
    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False).eval()
    randomize_layer_scale(randomize_batchnorm(model, seed=7), seed=8).double()
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    # Calibrate on a batch holding x: at 64 px the last stages see 2×2 positions, and statistics of other
    # images would leave some near-dead channels amplifying by up to 1/sqrt(eps) on x.
    extra = torch.randn(6, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    calibrate_batchnorm(model, torch.cat([x, extra]))
    model = model.float().double()
    # The fused form stays float64: rounding fused weights to float32 moves these logits by ~3e-5.
    fused = timm.utils.reparameterize_model(model) if arch.startswith("mobileone") else None
    return model, fused, x


def our_model(arch: str, **kwargs: object) -> nn.Module:
    """Our model in float64 (a train-time checkpoint loaded into a fused one is then fused in float64)."""
    return mobilebone.create_model(arch, **kwargs).double()  # type: ignore[arg-type]


def logits(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model.to(x.dtype).eval()(x)


def float32_state(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict with floating tensors in float32 (exact for ``timm_reference``'s weights)."""
    return {
        k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()
    }


def save_safetensors(model: nn.Module, path: Path, *, float32: bool = True) -> Path:
    state = float32_state(model) if float32 else {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return path


def to_apple(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """timm MobileOne keys → Apple ml-mobileone keys (Apple's ml-mobileone module names, the rename written backwards)."""
    renames = [
        (r"^stem\.", "stage0."),
        (r"^head\.fc\.", "linear."),
        (r"\.conv_kxk\.", ".rbr_conv."),
        (r"\.conv_scale\.", ".rbr_scale."),
        (r"\.identity\.", ".rbr_skip."),
        (r"\.attn\.fc1\.", ".se.reduce."),
        (r"\.attn\.fc2\.", ".se.expand."),
    ]
    out = {}
    for key, value in state_dict.items():
        new = re.sub(r"^stages\.(\d)\.", lambda m: f"stage{int(m.group(1)) + 1}.", key)
        for pattern, replacement in renames:
            new = re.sub(pattern, replacement, new)
        out[new] = value
    return out


# ---------------------------------------------------------------------------------------------- timm


@needs_timm
@pytest.mark.parametrize("arch", MODELS)
def test_timm_checkpoint_loads_strictly_with_same_logits(arch: str, tmp_path: Path) -> None:
    reference, _, x = timm_reference(arch)
    path = save_safetensors(reference, tmp_path / "model.safetensors")
    ours = mobilebone.load_checkpoint(our_model(arch), path)
    assert max_relative_error(logits(ours, x), logits(reference, x)) <= TOL


@needs_timm
@pytest.mark.parametrize("arch", MODELS)
def test_timm_train_time_checkpoint_into_fused_model(arch: str, tmp_path: Path) -> None:
    # timm MNv4 has no reparameterization: its unfused weights are fused on the way into ours.
    reference, _, x = timm_reference(arch)
    path = save_safetensors(reference, tmp_path / "model.safetensors")
    fused = mobilebone.load_checkpoint(our_model(arch, deploy=True), path)
    assert max_relative_error(logits(fused, x), logits(reference, x)) <= TOL


@needs_timm
@pytest.mark.parametrize("arch", MOBILEONE)
def test_timm_reparameterized_checkpoint_into_fused_model(arch: str, tmp_path: Path) -> None:
    _, reference, x = timm_reference(arch)
    assert reference is not None
    path = save_safetensors(reference, tmp_path / "fused.safetensors", float32=False)
    ours = mobilebone.load_checkpoint(our_model(arch, deploy=True), path)
    assert max_relative_error(logits(ours, x), logits(reference, x)) <= TOL
    # ... and ours reparameterized after loading the train-time weights agrees too.
    train = mobilebone.load_checkpoint(our_model(arch), float32_state(timm_reference(arch)[0]))
    ours_fused = mobilebone.reparameterize_model(train)
    assert max_relative_error(logits(ours_fused, x), logits(reference, x)) <= TOL


# The blocks the old reference could not see: negating one weight of the first or the last attention
# (or Squeeze-Excite) block must move the logits far beyond any tolerance, so a fusion or key-mapping
# error there cannot pass unnoticed.
SENSITIVE = [
    ("mobilenetv4_hybrid_medium", "attn.query.proj"),
    ("mobilenetv4_hybrid_medium", "attn.value.proj"),
    ("mobilenetv4_hybrid_large", "attn.query.proj"),
    ("mobilenetv4_hybrid_large", "layer_scale"),
    ("mobileone_s4", "se.fc1"),
]


@needs_timm
@pytest.mark.parametrize(("arch", "suffix"), SENSITIVE)
def test_reference_depends_on_every_kind_of_block(arch: str, suffix: str) -> None:
    reference, _, x = timm_reference(arch)
    model = mobilebone.load_checkpoint(our_model(arch), float32_state(reference))
    expected = logits(reference, x)
    attribute = "gamma" if suffix == "layer_scale" else "weight"
    found = [
        getattr(m, attribute)
        for n, m in model.named_modules()
        if n.endswith(suffix) and hasattr(m, attribute)
    ]
    assert found, suffix
    for weight in (found[0], found[-1]):
        with torch.no_grad():
            weight.neg_()
        changed = max_relative_error(logits(model, x), expected)
        with torch.no_grad():
            weight.neg_()
        assert changed > 1e-3, (suffix, changed)  # ≥ 100x the 1e-5 fusion bound, ≥ 1e6x TOL
    assert max_relative_error(logits(model, x), expected) <= TOL


@needs_timm
def test_reference_squeeze_excite_gates_are_not_saturated() -> None:
    # With BN statistics unrelated to the activations, S4's gates were all 0 or 1 (inputs ~5e6): SE
    # then acts as a fixed mask, and its weights hardly matter. Calibrated, they stay in the sigmoid's slope.
    reference, _, x = timm_reference("mobileone_s4")
    model = mobilebone.load_checkpoint(our_model("mobileone_s4"), float32_state(reference))
    gates: list[Tensor] = []
    for name, module in model.named_modules():
        if name.endswith("se.gate"):
            module.register_forward_hook(lambda _m, _i, out: gates.append(out.flatten()))
    logits(model, x)
    assert len(gates) == 12  # the last 5 blocks of stage 3 and stage 4's 1, each a depthwise + pointwise
    for gate in gates:
        assert float(((gate > 0.02) & (gate < 0.98)).double().mean()) > 0.5


# --------------------------------------------------------------------------------------------- Apple


@needs_timm
@pytest.mark.parametrize("arch", MOBILEONE)
def test_apple_checkpoints_unfused_and_fused(arch: str, tmp_path: Path) -> None:
    reference, reference_fused, x = timm_reference(arch)
    assert reference_fused is not None
    unfused = tmp_path / f"{arch}_unfused.pth.tar"
    fused = tmp_path / f"{arch}.pth.tar"
    torch.save(to_apple(float32_state(reference)), unfused)
    torch.save(to_apple(reference_fused.state_dict()), fused)
    expected, expected_fused = logits(reference, x), logits(reference_fused, x)

    train = mobilebone.load_checkpoint(our_model(arch), unfused)
    assert max_relative_error(logits(train, x), expected) <= TOL
    deploy = mobilebone.load_checkpoint(our_model(arch, deploy=True), unfused)
    assert max_relative_error(logits(deploy, x), expected) <= TOL
    deploy = mobilebone.load_checkpoint(our_model(arch, deploy=True), fused)
    assert max_relative_error(logits(deploy, x), expected_fused) <= TOL
    with pytest.raises(CheckpointError, match="deploy=True"):
        mobilebone.load_checkpoint(mobilebone.create_model(arch), fused)


# ---------------------------------------------------------------------------------- wrappers, suffixes


def _s0_state() -> dict[str, Tensor]:
    """A float32 MobileOne-S0 state dict with non-trivial BN statistics (keys as timm's: S0 has no SE)."""
    torch.manual_seed(0)
    return float32_state(randomize_batchnorm(mobilebone.create_model("mobileone_s0"), seed=7))


@pytest.mark.parametrize(
    ("wrap", "suffix"),
    [
        (lambda sd: sd, ".pth"),
        (lambda sd: {"state_dict": sd, "epoch": 3, "optimizer": {"lr": 0.1}}, ".pth.tar"),
        (lambda sd: {"model": sd}, ".pt"),
        (lambda sd: {"ema": sd}, ".bin"),
        (lambda sd: {"model_ema": {f"module.{k}": v for k, v in sd.items()}}, ".pth"),
        (lambda sd: {"state_dict_ema": sd, "state_dict": {}}, ".pth.tar"),
        (lambda sd: {f"_orig_mod.module.{k}": v for k, v in sd.items()}, ".bin"),
    ],
    ids=["bare", "state_dict", "model", "ema", "model_ema-ddp", "state_dict_ema", "compiled-ddp"],
)
def test_wrappers_are_unwrapped(wrap, suffix: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = _s0_state()
    path = tmp_path / f"ckpt{suffix}"
    torch.save(wrap(state), path)
    model = mobilebone.load_checkpoint(mobilebone.create_model("mobileone_s0"), path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_training_checkpoint_with_argparse_namespace_loads(tmp_path: Path) -> None:
    # timm's train.py stores its argparse Namespace next to the weights; it is data, not code.
    import argparse

    path = tmp_path / "checkpoint-3.pth.tar"
    torch.save({"state_dict": _s0_state(), "args": argparse.Namespace(lr=0.1), "arch": "mobileone_s0"}, path)
    mobilebone.load_checkpoint(mobilebone.create_model("mobileone_s0"), path)


def test_ema_is_preferred_over_raw_weights() -> None:
    state = _s0_state()
    shifted = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    model = mobilebone.load_checkpoint(
        mobilebone.create_model("mobileone_s0"), {"state_dict": state, "state_dict_ema": shifted}
    )
    torch.testing.assert_close(model.state_dict()["head.fc.bias"], shifted["head.fc.bias"])


@needs_timm
@pytest.mark.parametrize("arch", ["mobileone_s0", "mobilenetv4_conv_small"])
@pytest.mark.parametrize("deploy", [False, True])
def test_features_only_ignores_the_head(arch: str, deploy: bool, tmp_path: Path) -> None:
    reference, _, x = timm_reference(arch)
    path = save_safetensors(reference, tmp_path / "model.safetensors")
    feats = our_model(arch, features_only=True, deploy=deploy)
    mobilebone.load_checkpoint(feats, path)
    with torch.no_grad():
        expected = reference.forward_intermediates(x, intermediates_only=True)
        got = feats.eval()(x)
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        assert max_relative_error(ours, theirs) <= TOL


# ------------------------------------------------------------------------------------ mismatch reports


def _one_line_error(model: nn.Module, source: object) -> str:
    with pytest.raises(CheckpointError) as info:
        mobilebone.load_checkpoint(model, source)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_unexpected_and_shape_mismatch_are_listed_with_counts() -> None:
    state = dict(_s0_state())
    for key in ("stem.conv_scale.conv.weight", "stages.0.0.conv_kxk.0.conv.weight"):
        del state[key]
    state["extra.weight"] = torch.zeros(1)
    state["head.fc.bias"] = torch.zeros(7)
    message = _one_line_error(mobilebone.create_model("mobileone_s0"), state)
    assert "2 missing keys (stem.conv_scale.conv.weight, stages.0.0.conv_kxk.0.conv.weight)" in message
    assert "1 unexpected key (extra.weight)" in message
    assert "1 shape mismatch (head.fc.bias: checkpoint (7) vs model (1000))" in message


def test_another_variants_checkpoint_is_refused() -> None:
    message = _one_line_error(
        mobilebone.create_model("mobileone_s0"), float32_state(mobilebone.create_model("mobileone_s1"))
    )
    assert re.search(r"\d+ shape mismatches", message) and "another model" in message


@needs_timm
def test_another_familys_checkpoint_is_refused() -> None:
    message = _one_line_error(
        mobilebone.create_model("mobileone_s0"), float32_state(timm_reference("mobilenetv4_conv_small")[0])
    )
    assert "timm MobileNetV4" in message and "mobileone_s0" in message


def test_class_count_mismatch_suggests_num_classes() -> None:
    model = mobilebone.create_model("mobileone_s0", num_classes=10)
    message = _one_line_error(model, _s0_state())
    assert "num_classes=1000" in message


def test_counts_are_pluralized() -> None:
    from mobilebone.checkpoints.load import plural

    assert [plural(n, "shape mismatch") for n in (1, 2)] == ["shape mismatch", "shape mismatches"]
    assert [plural(n, "missing key") for n in (0, 1, 3)] == ["missing keys", "missing key", "missing keys"]


def test_unknown_keys_are_reported() -> None:
    message = _one_line_error(mobilebone.create_model("mobileone_s0"), {"foo.weight": torch.zeros(2)})
    assert "match no supported layout" in message


def test_non_strict_load_warns_and_loads_what_fits() -> None:
    state = dict(_s0_state())
    del state["head.fc.weight"]
    model = mobilebone.create_model("mobileone_s0")
    with pytest.warns(UserWarning, match="1 missing key"):
        mobilebone.load_checkpoint(model, state, strict=False)
    torch.testing.assert_close(model.state_dict()["head.fc.bias"], state["head.fc.bias"])


# ------------------------------------------------------------------------------------------------ safety


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_with_code_payload_is_refused_and_never_run(writer: str, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    payload = {"stem.conv.weight": torch.zeros(1), "x": _Payload(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with path.open("wb") as handle:
            pickle.dump(payload, handle)
    message = _one_line_error(mobilebone.create_model("mobileone_s0"), path)
    assert "pickled code" in message and "system" in message
    assert not marker.exists()


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.pth"
    torch.save(_s0_state(), good)
    data = good.read_bytes()
    files = {
        "empty": (tmp_path / "empty.pth", b""),
        "truncated": (tmp_path / "truncated.pth", data[: len(data) // 2]),
        "garbage": (tmp_path / "garbage.pth.tar", random.Random(0).randbytes(4096)),
        "truncated-safetensors": (tmp_path / "t.safetensors", b""),
        "text": (tmp_path / "notes.bin", b"hello, I am not a checkpoint\n"),
    }
    sf = tmp_path / "full.safetensors"
    save_file(_s0_state(), str(sf))
    files["truncated-safetensors"] = (tmp_path / "t.safetensors", sf.read_bytes()[:5000])
    for path, content in files.values():
        path.write_bytes(content)
    return {name: path for name, (path, _) in files.items()}


BAD_FILE_MESSAGES = {
    "empty": "the file is empty; download or save it again",
    "truncated": "it is a PyTorch checkpoint whose zip archive is truncated or corrupted; download or save",
    "garbage": "it is a binary file of unknown type, not a checkpoint; mobilebone reads .safetensors files",
    "truncated-safetensors": "it is a truncated or corrupted safetensors file; download or save it again",
    "text": "it is a text file, not a checkpoint; mobilebone reads .safetensors files and PyTorch "
    "checkpoints written by torch.save (.pth, .pth.tar, .pt, .bin, .ckpt)",
}


def test_corrupted_truncated_and_empty_files_give_clear_errors(tmp_path: Path) -> None:
    for name, path in _bad_files(tmp_path).items():
        message = _one_line_error(mobilebone.create_model("mobileone_s0"), path)
        # What the file is (not), what is accepted or what to do; no raw, cut-off library detail.
        assert message.startswith(f"cannot load {path}: {BAD_FILE_MESSAGES[name]}"), (name, message)
        assert not re.search(r"\(\d+\)|miniz|internal|Error while", message), (name, message)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        mobilebone.load_checkpoint(mobilebone.create_model("mobileone_s0"), tmp_path / "missing.pth")


# ------------------------------------------------------------------------------------------------ native


@needs_timm
@pytest.mark.parametrize("arch", ["mobileone_s4", "mobilenetv4_hybrid_medium"])
def test_native_roundtrip_train_and_fused(arch: str, tmp_path: Path) -> None:
    reference, _, x = timm_reference(arch)
    model = mobilebone.load_checkpoint(our_model(arch), float32_state(reference))
    for form, source in (("train", model), ("fused", mobilebone.reparameterize_model(model))):
        path = save_native(source, tmp_path / f"{form}.safetensors", model_name=arch, metadata={"note": "hi"})
        meta = read_metadata(path)
        assert meta["format"] == "mobilebone" and meta["format_version"] == "1"
        assert meta["model_name"] == arch and meta["note"] == "hi"
        assert meta["mobilebone_version"] == mobilebone.__version__
        assert meta["fused"] == ("true" if form == "fused" else "false")
        config = json.loads(meta["config"])
        assert config["architecture"] == arch and config["num_classes"] == 1000
        loaded = mobilebone.load_checkpoint(our_model(arch, deploy=form == "fused"), path)
        assert max_relative_error(logits(loaded, x), logits(reference, x)) <= TOL
    assert not list(tmp_path.glob(".*.tmp*"))


def test_native_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    model = mobilebone.create_model("mobileone_s0")
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"previous")

    def broken(*args: object, **kwargs: object) -> None:
        Path(str(args[1])).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_native(model, target, model_name="mobileone_s0")
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    with pytest.raises(ValueError, match="safetensors"):
        save_native(model, tmp_path / "model.pth", model_name="mobileone_s0")


def test_features_only_model_saves_and_loads(tmp_path: Path) -> None:
    feats = mobilebone.create_model("mobilenetv4_conv_small", features_only=True)
    randomize_batchnorm(feats, seed=1)
    path = save_native(feats, tmp_path / "f.safetensors", model_name="mobilenetv4_conv_small")
    again = mobilebone.load_checkpoint(
        mobilebone.create_model("mobilenetv4_conv_small", features_only=True), path
    )
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        for a, b in zip(again.eval()(x), feats.eval()(x), strict=True):
            torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------------------------------- CLI


@needs_timm
def test_convert_cli_timm_to_native_fused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference, _, x = timm_reference("mobileone_s0")
    src = save_safetensors(reference, tmp_path / "timm.safetensors")
    dst = tmp_path / "out" / "s0.safetensors"
    assert main(["convert", str(src), str(dst), "--model", "mobileone_s0", "--deploy"]) == 0
    assert read_metadata(dst)["fused"] == "true"
    # convert fuses in float32: the file holds exactly what the library computes from the same weights ...
    library = mobilebone.reparameterize_model(
        mobilebone.load_checkpoint(mobilebone.create_model("mobileone_s0"), src)
    )
    model = mobilebone.load_checkpoint(mobilebone.create_model("mobileone_s0", deploy=True), dst)
    for key, value in library.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)
    # ... which agrees with timm up to the float32 rounding of the fused weights.
    assert max_relative_error(logits(model, x), logits(reference, x)) <= F32_TOL
    # A native file names its model: --model is optional.
    again = tmp_path / "again.safetensors"
    assert main(["convert", str(dst), str(again)]) == 0
    assert read_metadata(again)["model_name"] == "mobileone_s0"


@needs_timm
def test_convert_cli_apple_and_tag_records_preprocessing(tmp_path: Path) -> None:
    reference, _, _ = timm_reference("mobileone_s1")
    src = tmp_path / "mobileone_s1_unfused.pth.tar"
    torch.save(to_apple(float32_state(reference)), src)
    dst = tmp_path / "s1.safetensors"
    assert main(["convert", str(src), str(dst), "--model", "mobileone_s1.apple_in1k"]) == 0
    cfg = json.loads(read_metadata(dst)["config"])["pretrained_cfg"]
    assert cfg["crop_pct"] == 0.9 and cfg["tag"] == "apple_in1k"


@needs_timm
def test_convert_cli_failures_are_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _bad_files(tmp_path)
    marker = tmp_path / "PWNED"
    torch.save({"x": _Payload(marker)}, tmp_path / "evil.pth")
    bad["payload"] = tmp_path / "evil.pth"
    other = save_safetensors(timm_reference("mobileone_s1")[0], tmp_path / "s1.safetensors")
    bad["other model"] = other
    capsys.readouterr()
    for name, src in bad.items():
        dst = tmp_path / "out" / f"{name}.safetensors"
        assert main(["convert", str(src), str(dst), "--model", "mobileone_s0"]) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith("mobilebone convert: error:") and "\n" not in err, (name, err)
        assert not dst.exists()
    assert not marker.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert main(["convert", str(other), str(tmp_path / "x.safetensors")]) == 2  # no --model, no metadata
    assert "--model" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- tags and the Hub


@needs_timm
def test_pretrained_tags_match_timm() -> None:
    names = mobilebone.list_models(pretrained=True)
    assert len(names) == len(all_tags()) == 23
    assert {n.split(".")[0] for n in names} == set(MODELS)
    assert mobilebone.list_models("mobileone_s0", pretrained=True) == ["mobileone_s0.apple_in1k"]
    assert "mobilenetv4_conv_small.e2400_r224_in1k" in mobilebone.list_models("mobilenetv4*", pretrained=True)
    for name in names:
        theirs = timm.models.get_pretrained_cfg(name).to_dict()
        ours = all_tags()[name].cfg()
        keys = (
            "input_size",
            "crop_pct",
            "interpolation",
            "mean",
            "std",
            "num_classes",
            "hf_hub_id",
            "license",
        )
        for key in keys:
            assert (
                tuple(ours[key]) == tuple(theirs[key])
                if isinstance(ours[key], tuple)
                else ours[key] == theirs[key]
            ), (name, key)
        assert ours.get("test_input_size") == theirs.get("test_input_size"), name
        assert ours.get("test_crop_pct") == (
            theirs.get("test_crop_pct") if theirs.get("test_input_size") else None
        )
    for arch in MODELS:  # the default tag is timm's default
        default = timm.models.get_pretrained_cfg(arch).to_dict()["tag"]
        assert mobilebone.checkpoints.tags.default_tag(arch).tag == default


def test_list_pretrained_shows_preprocessing_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines() == MODELS  # unchanged: one name per line
    assert main(["list", "--pretrained"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header == ["name", "input", "crop", "interpolation", "mean", "std", "classes", "test", "hf_hub_id"]
    rows = {line.split()[0]: dict(zip(header, line.split(), strict=True)) for line in lines[1:-1]}
    assert sorted(rows) == mobilebone.list_models(pretrained=True)
    assert rows["mobileone_s0.apple_in1k"] == {
        "name": "mobileone_s0.apple_in1k",
        "input": "224",
        "crop": "0.875",
        "interpolation": "bilinear",
        "mean": "0.485,0.456,0.406",
        "std": "0.229,0.224,0.225",
        "classes": "1000",
        "test": "-",
        "hf_hub_id": "timm/mobileone_s0.apple_in1k",
    }
    small = rows["mobilenetv4_conv_small.e3600_r256_in1k"]
    assert (small["input"], small["crop"], small["interpolation"]) == ("256", "0.95", "bicubic")
    assert small["mean"] == small["std"] == "0.5,0.5,0.5" and small["test"] == "320@1"
    assert rows["mobilenetv4_conv_medium.e180_r384_in12k"]["classes"] == "11821"
    assert "model.safetensors" in lines[-1]
    assert main(["list", "mobileone_s1", "--pretrained"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3  # header, one tag, footer


@needs_timm
def test_pretrained_downloads_through_huggingface_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    reference, _, x = timm_reference("mobilenetv4_conv_small")
    file = save_safetensors(reference, tmp_path / "model.safetensors")
    calls: list[tuple[str, str]] = []

    def fake_download(repo_id: str, filename: str, **kwargs: object) -> str:
        calls.append((repo_id, filename))
        return str(file)

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda **kwargs: None)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda url, **kwargs: object())
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    model = mobilebone.create_model("mobilenetv4_conv_small.e3600_r256_in1k", pretrained=True)
    assert calls == [("timm/mobilenetv4_conv_small.e3600_r256_in1k", "model.safetensors")]
    assert model.pretrained_cfg["input_size"] == (3, 256, 256) and model.pretrained_cfg["mean"] == (
        0.5,
        0.5,
        0.5,
    )
    assert max_relative_error(logits(model, x), logits(reference, x)) <= TOL
    fused = mobilebone.create_model("mobilenetv4_conv_small", pretrained=True, deploy=True)
    assert calls[-1][0] == "timm/mobilenetv4_conv_small.e2400_r224_in1k"
    assert max_relative_error(logits(fused, x), logits(reference, x)) <= F32_TOL  # fused in float32
    model = mobilebone.load_checkpoint(mobilebone.create_model("mobilenetv4_conv_small"), "e1200_r224_in1k")
    assert model.pretrained_cfg["tag"] == "e1200_r224_in1k"


@needs_timm
def test_pretrained_local_path_and_new_classifier(tmp_path: Path) -> None:
    reference, _, x = timm_reference("mobileone_s0")
    path = save_safetensors(reference, tmp_path / "w.safetensors")
    model = mobilebone.create_model("mobileone_s0", pretrained=str(path))
    assert max_relative_error(logits(model, x), logits(reference, x)) <= TOL
    with pytest.warns(UserWarning, match="num_classes=1000"):
        head10 = mobilebone.create_model("mobileone_s0", pretrained=str(path), num_classes=10)
    assert logits(head10, x).shape == (2, 10)
    torch.testing.assert_close(
        head10.state_dict()["stem.conv_scale.conv.weight"],
        reference.state_dict()["stem.conv_scale.conv.weight"],
    )
    with pytest.raises(FileNotFoundError, match="neither an existing file nor a weight tag"):
        mobilebone.create_model("mobileone_s0", pretrained=str(tmp_path / "nope.pth"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mobilebone.create_model("mobileone_s0", pretrained=str(path), features_only=True)


_OFFLINE_SCRIPT = """
import sys, mobilebone
from mobilebone.checkpoints import CheckpointError
model = mobilebone.create_model("mobileone_s0", pretrained=True)   # found in the cache
print("CACHED", float(model.state_dict()["head.fc.bias"].sum()))
try:
    mobilebone.create_model("mobileone_s1", pretrained=True)       # not cached, offline
except CheckpointError as err:
    print("ERROR", err)
"""


@needs_timm
def test_offline_uses_the_cache_and_otherwise_says_what_to_do(tmp_path: Path) -> None:
    # Lay the file out as huggingface_hub's cache does: refs/main → snapshots/<commit>/model.safetensors.
    repo = tmp_path / "hub" / "models--timm--mobileone_s0.apple_in1k"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    reference = timm_reference("mobileone_s0")[0]
    save_safetensors(reference, repo / "snapshots" / commit / "model.safetensors")
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    result = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    cached = next(line for line in result.stdout.splitlines() if line.startswith("CACHED"))
    assert float(cached.split()[1]) == pytest.approx(
        float(reference.state_dict()["head.fc.bias"].sum()), rel=1e-6
    )
    error = next(line for line in result.stdout.splitlines() if line.startswith("ERROR"))
    assert "timm/mobileone_s1.apple_in1k" in error and "model.safetensors" in error
    assert "create_model('mobileone_s1', pretrained='/path/to/model.safetensors')" in error
    assert "--weights" not in error  # a Python caller gets Python advice (the CLI's is its cli_message)


def test_no_network_fails_at_once_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx2
    import huggingface_hub

    def refused(url: str, **kwargs: object) -> None:
        raise httpx2.ConnectError("[Errno 111] Connection refused")

    def download(**kwargs: object) -> str:  # retries five times with back-off when the network is down
        raise AssertionError("hf_hub_download must not be reached without a network")

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda **kwargs: None)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", refused)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with pytest.raises(CheckpointError) as info:
        mobilebone.create_model("mobileone_s2", pretrained=True)
    message = str(info.value)
    assert "\n" not in message and "ConnectError: [Errno 111] Connection refused" in message
    assert "/timm/mobileone_s2.apple_in1k/resolve/main/model.safetensors" in message
    assert "pretrained='/path/to/model.safetensors')" in message  # Python advice to a Python caller
    assert "--weights /path/to/model.safetensors" in info.value.cli_message  # and CLI advice for the CLI


_UNREACHABLE_SCRIPT = """
import time, mobilebone
import mobilebone.checkpoints.hub  # imported lazily by create_model: keep torch's import out of the timing
from mobilebone.checkpoints import CheckpointError
start = time.perf_counter()
try:
    mobilebone.create_model("mobileone_s1", pretrained=True)
except CheckpointError as err:
    print("ERROR", err)
print("SECONDS", time.perf_counter() - start)
"""


def test_unreachable_hub_fails_in_well_under_a_second(tmp_path: Path) -> None:
    # A real connection to a closed local port: huggingface_hub's own retries took ~23 s here.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    for key in ("HF_HUB_CACHE", "HF_HUB_OFFLINE"):
        env.pop(key, None)
    result = subprocess.run(
        [sys.executable, "-c", _UNREACHABLE_SCRIPT], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert "ConnectError" in lines["ERROR"] and f"http://127.0.0.1:{port}/timm/" in lines["ERROR"]
    assert float(lines["SECONDS"]) < 5.0
    assert "Retrying" not in result.stderr


def test_random_bytes_never_escape_as_a_raw_exception(tmp_path: Path) -> None:
    """Whatever the unpickler trips over (IndexError, struct.error, …), the user gets a CheckpointError."""
    rng = random.Random(1)
    path = tmp_path / "noise.pth"
    for i in range(300):
        header = (b"\x80\x02", b"PK\x03\x04", b"")[i % 3]  # old pickle, zip, or no magic at all
        path.write_bytes(header + rng.randbytes(rng.randint(1, 2048)))
        with pytest.raises(CheckpointError, match="cannot load"):
            read_checkpoint(path)


def test_tagged_name_without_weights_carries_the_tag_preprocessing() -> None:
    model = mobilebone.create_model("mobilenetv4_conv_small.e3600_r256_in1k", num_classes=10)
    cfg = model.pretrained_cfg
    assert cfg["tag"] == "e3600_r256_in1k" and cfg["input_size"] == (3, 256, 256)
    assert cfg["mean"] == (0.5, 0.5, 0.5) and cfg["num_classes"] == 10
    bare = mobilebone.create_model("mobilenetv4_conv_small")
    assert "tag" not in bare.pretrained_cfg and bare.pretrained_cfg["input_size"] == (3, 224, 224)
