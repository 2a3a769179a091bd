"""Training: recipes, the embedded set, resume checkpoints, the train/eval CLI, kill-and-resume, torchrun."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mobilebone.checkpoints import read_metadata
from mobilebone.cli.main import main
from mobilebone.training import checkpointing as ckpt
from mobilebone.training import resolve_config
from mobilebone.training.config import TrainConfig, scaled_lr
from mobilebone.training.data import ResumableSampler
from mobilebone.training.logging import RunLogger
from mobilebone.training.synthetic import SyntheticShapes

# A run small enough for a test: 32 px, a few steps per epoch.
TINY = [
    "--input-size",
    "32",
    "--batch-size",
    "8",
    "--embedded-train",
    "96",
    "--embedded-val",
    "32",
    "--workers",
    "0",
]


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    return env


def _train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mobilebone", "train", "--out", str(out), *TINY, *extra]


# ---- configuration


def test_recipes_follow_the_papers_and_overrides_win() -> None:
    s0 = resolve_config("mobileone_s0", "/data")
    assert (s0.recipe, s0.optimizer, s0.momentum, s0.epochs) == ("mobileone", "sgd", 0.9, 300)
    assert (s0.weight_decay, s0.weight_decay_end, s0.label_smoothing, s0.ema_decay) == (
        1e-4,
        1e-5,
        0.1,
        0.9995,
    )
    assert s0.augment == "basic" and resolve_config("mobileone_s3", "/data").augment == "autoaugment"
    assert scaled_lr(s0, world_size=4) == pytest.approx(0.1 * 256 * 4 / 256)  # 0.1 per 256 images, linear
    mnv4 = resolve_config("mobilenetv4_conv_medium", "/data", epochs=7, lr=0.01)
    assert (mnv4.recipe, mnv4.optimizer, mnv4.augment, mnv4.epochs) == (
        "mobilenetv4",
        "adamw",
        "randaugment",
        7,
    )
    assert scaled_lr(mnv4, world_size=1) == 0.01
    embedded, embedded_mnv4 = resolve_config(), resolve_config("mobilenetv4_conv_small")
    assert (embedded.recipe, embedded.epochs, embedded.input_size, embedded.grad_clip) == (
        "embedded",
        8,
        48,
        0,
    )
    assert scaled_lr(embedded, world_size=1) == pytest.approx(0.02)
    # MobileNetV4 diverges at MobileOne's embedded lr: a lower one, with clipping (docs/training.md).
    assert (scaled_lr(embedded_mnv4, world_size=1), embedded_mnv4.grad_clip) == (pytest.approx(0.004), 5.0)
    with pytest.raises(ValueError, match="epochs"):
        resolve_config("mobileone_s0", None, epochs=0)
    with pytest.raises(ValueError, match="unknown model"):
        resolve_config("mobileone_s9", None)
    assert TrainConfig.from_json(s0.to_json()) == s0


def test_embedded_set_is_deterministic_and_has_ten_classes() -> None:
    a, b = SyntheticShapes("train", 40, seed=3), SyntheticShapes("train", 40, seed=3)
    assert (a.pixels == b.pixels).all() and a.targets == b.targets
    assert not (SyntheticShapes("val", 40, seed=3).pixels == a.pixels).all()
    assert len(a.classes) == 10 and len(set(SyntheticShapes("train", 300).targets)) == 10
    with pytest.raises(ValueError, match="10 to"):
        SyntheticShapes("train", 4, num_classes=3)


def test_resumable_sampler_skips_exactly_the_samples_done() -> None:
    sampler = ResumableSampler(list(range(50)), rank=0, world_size=1, seed=7, drop_last=False)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, skip=16)
    assert list(sampler) == full[16:] and len(sampler) == 34
    sampler.set_epoch(3)
    assert list(sampler) != full


# ---- resume checkpoints


def test_resume_state_is_weights_only_atomic_and_restores_rng(tmp_path: Path) -> None:
    torch.manual_seed(5)
    rng = ckpt.rng_state()
    expected = torch.rand(3)
    path = ckpt.save_state(tmp_path / ckpt.RESUME_FILE, {"rng": rng, "epoch": 2, "config": "{}"})
    assert not list(tmp_path.glob(".*.tmp*"))  # the temporary file was renamed, not left behind
    state = ckpt.load_state(tmp_path)  # a run folder works as well as the file
    ckpt.set_rng_state(state["rng"])
    torch.testing.assert_close(torch.rand(3), expected)
    assert state["epoch"] == 2
    path.write_bytes(path.read_bytes()[:100])  # truncated (killed while copying, disk full, …)
    with pytest.raises(ValueError, match="corrupted"):
        ckpt.load_state(path)


def test_resumed_log_drops_the_epochs_the_resume_redoes(tmp_path: Path) -> None:
    logger = RunLogger(tmp_path, enabled=True)
    for epoch in (1, 2, 3):  # epoch 3 was logged, then the run was killed before its checkpoint
        logger.epoch_row({"epoch": epoch, "val_top1": 10.0 * epoch})
    logger.close()
    RunLogger(tmp_path, enabled=True, purge_step=0, epochs_done=2).close()
    lines = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch", "1", "2"]


# ---- the CLI end to end


def test_train_cli_embedded_run_saves_config_and_deploys_identically(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["train", "--out", str(out), *TINY, "--epochs", "2", "--lr", "0.05", "--seed", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert (config["epochs"], config["lr"], config["seed"], config["input_size"]) == (2, 0.05, 3, 32)
    assert config["recipe"] == "embedded" and config["model"] == "mobileone_s0"
    for name in (
        "model_best.safetensors",
        "model_last.safetensors",
        "model_deploy.safetensors",
        "metrics.csv",
    ):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").iterdir())
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    assert read_metadata(out / "model_deploy.safetensors")["fused"] == "true"
    assert read_metadata(out / "model_best.safetensors")["fused"] == "false"
    # The reparameterized model must score exactly what the train-time form scored on the same images.
    line = next(x for x in printed.splitlines() if "deploy form" in x)
    train_top1 = float(line.split("train-time form top1 ")[1].split(";")[0])
    deploy_top1 = float(line.split("deploy form top1 ")[1].split(" ")[0])
    assert train_top1 == deploy_top1 and "difference 0," in line

    # eval without --data: the embedded val split as trained (32 images), top-1 equal to training's
    assert main(["eval", "--weights", str(out / "model_deploy.safetensors"), "--workers", "0"]) == 0
    report = capsys.readouterr().out
    assert "32 images at 32 px" in report and f"top-1 {deploy_top1:.2f} %" in report and "top-5" in report


def test_train_and_eval_on_an_image_folder(tmp_path: Path, capsys) -> None:
    data, pool = tmp_path / "data", SyntheticShapes("train", 200, seed=1)
    taken: dict[str, int] = {}
    for i in range(len(pool)):  # 4 train and 2 val images per class
        name = pool.classes[pool.targets[i]]
        rank = taken[name] = taken.get(name, 0) + 1
        if rank <= 6:
            folder = data / ("train" if rank <= 4 else "val") / name
            folder.mkdir(parents=True, exist_ok=True)
            pool[i][0].save(folder / f"{i}.png")
    assert len(taken) == 10 and min(taken.values()) >= 6
    out = tmp_path / "run"
    args = [
        "--out",
        str(out),
        "--data",
        str(data),
        "--epochs",
        "1",
        "--input-size",
        "32",
        "--batch-size",
        "8",
    ]
    assert main(["train", *args, "--workers", "0", "--epochs", "1", "--checkpoint-every", "0"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "mobileone" and config["optimizer"] == "sgd"  # --data → the paper's recipe
    capsys.readouterr()
    code = main(
        [
            "eval",
            "--model",
            "mobileone_s0",
            "--weights",
            str(out / "model_best.safetensors"),
            "--data",
            str(data),
            "--workers",
            "0",
        ]
    )
    assert code == 0
    report = capsys.readouterr().out
    assert "20 images at 32 px" in report and "top-1" in report and "top-5" in report


def test_bad_data_gives_a_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["train", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such directory" in err and len(err.splitlines()) == 1
    (tmp_path / "val").mkdir()
    assert main(["train", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no train/ folder" in err and len(err.splitlines()) == 1
    out = tmp_path / "run"
    ckpt.save_state(out / ckpt.RESUME_FILE, {"config": "{}"})
    assert main(["train", "--out", str(out), *TINY]) == 2  # never overwrite a run silently
    assert "--resume" in capsys.readouterr().err
    # a resumed run keeps its saved settings: flags that differ from them are refused, naming each
    ckpt.save_state(out / ckpt.RESUME_FILE, {"config": resolve_config(epochs=3).to_json()})
    assert main(["train", "--out", str(out), "--resume", "--epochs", "30", "--lr", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--epochs (saved: 3, given: 30)" in err and "--lr (saved: None, given: 0.1)" in err
    assert len(err.splitlines()) == 1


# ---- fault tolerance and distributed training (subprocesses)


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    # Two loader workers: each sample's augmentation is seeded by (seed, epoch, index), not by the worker.
    args = [
        "--workers",
        "2",
        "--epochs",
        "2",
        "--checkpoint-every",
        "3",
        "--seed",
        "11",
        "--ema-decay",
        "0.9",
        "--drop-path",
        "0.1",
    ]
    reference = subprocess.run(_train_cmd(tmp_path / "a", *args), env=_env(), capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr[-2000:]

    killed = tmp_path / "b"
    proc = subprocess.Popen(
        _train_cmd(killed, *args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while not (killed / ckpt.RESUME_FILE).exists():
        assert proc.poll() is None, "the run ended before writing a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = ckpt.load_state(killed)  # intact despite the kill
    assert state["epoch"] == 0 and state["step_in_epoch"] > 0, "the kill should land mid-epoch"
    assert not (killed / "model_deploy.safetensors").exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "mobilebone", "train", "--out", str(killed), "--resume"],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming at epoch 1, step" in resumed.stdout
    for name in ("model_last.safetensors", "model_deploy.safetensors"):
        expected, actual = load_file(tmp_path / "a" / name), load_file(killed / name)
        assert expected.keys() == actual.keys()
        for key in expected:  # same seed, same batches, same augmentation, same dropout: bit-identical
            assert torch.equal(expected[key], actual[key]), key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_torchrun_two_processes_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "mobilebone",
        "train",
        "--out",
        str(out),
        *TINY,
        "--epochs",
        "1",
        "--checkpoint-every",
        "2",
    ]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es) on cpu" in result.stdout and result.stdout.count("epoch 1/1: train loss") == 1
    state = ckpt.load_state(out)
    assert state["world_size"] == 2 and state["epoch"] == 1
    assert state["rng"]["torch"].shape[0] == 2  # one RNG state per rank
    assert not torch.equal(state["rng"]["torch"][0], state["rng"]["torch"][1])
    assert read_metadata(out / "model_deploy.safetensors")["fused"] == "true"


def test_backbone_weights_start_a_classifier_from_a_previous_run(tmp_path: Path) -> None:
    """Fine-tuning: --backbone-weights loads every tensor (the classifier too when the class counts match)."""
    from mobilebone import create_model
    from mobilebone.checkpoints import save_native
    from mobilebone.training.classification import ClassificationTask

    trained = create_model("mobileone_s0", num_classes=10)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # differ from a fresh init
    weights = save_native(trained, tmp_path / "s0.safetensors", model_name="mobileone_s0")
    cfg = resolve_config("mobileone_s0", backbone_weights=str(weights))
    started = ClassificationTask(cfg).build_model(cfg, 10).state_dict()
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(started[key], value, rtol=0, atol=0, msg=key)
    with pytest.warns(UserWarning, match="classifier"):  # 12 classes: a fresh classifier, the rest loaded
        other = ClassificationTask(cfg).build_model(cfg, 12).state_dict()
    stem = "stem.conv_kxk.0.conv.weight"
    torch.testing.assert_close(other[stem], trained.state_dict()[stem], rtol=0, atol=0)
    assert other["head.fc.weight"].shape[0] == 12
