"""Run-folder safety: no silent overwrite, one run per folder (lock), filesystem errors in one line."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mobilebone.cli.main import main
from mobilebone.training import checkpointing as ckpt
from mobilebone.training.errors import RunDirError
from mobilebone.training.rundir import LOCK_FILE, RunLock, open_run_dir

TINY = ["--input-size", "32", "--batch-size", "8", "--embedded-train", "32", "--embedded-val", "16"]
TINY += ["--workers", "0", "--epochs", "1", "--ema-decay", "0"]


def test_trained_weights_without_a_resume_checkpoint_are_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "model_best.safetensors").write_bytes(b"trained weights")
    (out / "notes.txt").write_bytes(b"mine")
    assert main(["train", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert (out / "model_best.safetensors").read_bytes() == b"trained weights"
    assert sorted(p.name for p in out.iterdir()) == ["model_best.safetensors", "notes.txt"]  # no lock left


def test_overwrite_replaces_only_the_run_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "tensorboard").mkdir(parents=True)
    (out / "model_best.safetensors").write_bytes(b"old")
    (out / "notes.txt").write_bytes(b"mine")
    lock = open_run_dir(out, resuming=False, overwrite=True)
    lock.release()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", LOCK_FILE]


def test_a_second_run_on_a_locked_folder_fails_at_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    lock = open_run_dir(out, resuming=False, overwrite=False)
    try:
        # Another process: flock locks belong to the open file description, so test across processes.
        code = (
            "import sys; from pathlib import Path\n"
            "from mobilebone.training.rundir import open_run_dir\n"
            "from mobilebone.training.errors import RunDirError\n"
            "try:\n    open_run_dir(Path(sys.argv[1]), resuming=False, overwrite=False)\n"
            "except RunDirError as e:\n    print(e); sys.exit(3)\n"
        )
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
        result = subprocess.run(
            [sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True
        )
        assert result.returncode == 3, result.stderr[-1000:]
        assert "in use by another training run" in result.stdout
        with pytest.raises(RunDirError, match="in use"):  # in this process too (a second open file)
            RunLock(out)
    finally:
        lock.release()
    open_run_dir(out, resuming=False, overwrite=False).release()  # free again once released


def test_parent_path_that_is_a_file_gives_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["train", "--out", str(tmp_path / "file" / "run"), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot create it" in err and str(tmp_path / "file") in err and len(err.splitlines()) == 1
    assert main(["train", "--out", str(tmp_path / "file"), *TINY]) == 2
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_run_folder_gives_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["train", "--out", str(out), *TINY]) == 2
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert "Permission denied" in err and str(out) in err and len(err.splitlines()) == 1


def test_read_only_file_system_gives_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Works as root too: the lock file's open fails the way a read-only mount makes it fail.
    real_open = open

    def read_only(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file).endswith(LOCK_FILE):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    assert main(["train", "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "Read-only file system" in err and LOCK_FILE in err and len(err.splitlines()) == 1


def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    written: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        # The second resume checkpoint hits a full disk (fsync is where delayed allocation reports it).
        if "checkpoint_last" in os.readlink(f"/proc/self/fd/{fd}"):
            written.append(fd)
            if len(written) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert main(["train", "--out", str(out), *TINY, "--checkpoint-every", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err == f"mobilebone train: error: cannot write {out / ckpt.RESUME_FILE}: No space left on device"
    state = ckpt.load_state(out)  # the first checkpoint, whole
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (0, 1, 1)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert main(["train", "--out", str(out), "--resume"]) == 0  # and the run can continue from it
    assert ckpt.load_state(out)["epoch"] == 1
    assert isinstance(torch.load(out / ckpt.RESUME_FILE, weights_only=True), dict)
