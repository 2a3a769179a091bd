"""Atomic output (``mobilebone.atomic``): the usual file mode, nothing half-written, and its three users."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import mobilebone
from mobilebone.atomic import atomic_open, atomic_path, default_mode
from mobilebone.checkpoints import save_native
from mobilebone.cli.main import main


@pytest.fixture(params=[0o022, 0o027], ids=["umask-022", "umask-027"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_mode_follows_the_umask(umask: int) -> None:
    assert default_mode() == 0o666 & ~umask and default_mode(directory=True) == 0o777 & ~umask


def test_files_get_the_mode_open_would_give_them(tmp_path: Path, umask: int) -> None:
    # mkstemp makes 0600 files; what users get must be what a plain open() makes.
    with atomic_open(tmp_path / "a.bin") as handle:
        handle.write(b"data")
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"data")
        os.chmod(tmp, 0o600)  # even if the writer itself made it private
    with atomic_path(tmp_path / "c.mlpackage") as tmp:
        (tmp / "Data").mkdir(parents=True)
        (tmp / "Data" / "weights.bin").write_bytes(b"w")
    assert _mode(tmp_path / "a.bin") == _mode(tmp_path / "b.bin") == 0o666 & ~umask
    assert _mode(tmp_path / "c.mlpackage") == 0o777 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin", "c.mlpackage"]


def test_failure_keeps_the_old_file_and_removes_new_folders(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"previous")
    with pytest.raises(OSError, match="disk full"), atomic_open(target) as handle:
        handle.write(b"partial")
        raise OSError("disk full")
    assert target.read_bytes() == b"previous"
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_path(tmp_path / "x.bin"):
        pass
    nested = tmp_path / "new" / "deeper" / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(nested) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]


def test_an_existing_directory_output_is_replaced(tmp_path: Path) -> None:
    package = tmp_path / "m.mlpackage"
    (package / "old").mkdir(parents=True)
    with atomic_path(package) as tmp:
        (tmp / "new").mkdir(parents=True)
    assert [p.name for p in package.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's deprecation notice on reload
def test_every_writer_uses_it(tmp_path: Path, umask: int) -> None:
    from mobilebone.export import to_torchscript
    from mobilebone.training.checkpointing import atomic_torch_save

    expected = 0o666 & ~umask
    model = mobilebone.create_model("mobileone_s0")
    native = save_native(model, tmp_path / "native" / "s0.safetensors", model_name="mobileone_s0")
    resume = atomic_torch_save({"step": torch.tensor(3)}, tmp_path / "run" / "checkpoint_last.pt")
    exported = to_torchscript(model, tmp_path / "export" / "s0.pt", input_size=32).path
    assert _mode(native) == _mode(resume) == _mode(exported) == expected
    converted = tmp_path / "converted.safetensors"
    assert main(["convert", str(native), str(converted)]) == 0
    assert _mode(converted) == expected  # was 0600: written through mkstemp
    assert not list(tmp_path.rglob(".*.tmp*"))
