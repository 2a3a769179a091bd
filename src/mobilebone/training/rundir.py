"""The run folder: refuse to mix runs, lock it for one process, write ``config.json`` atomically.

A folder is usable when it is new or empty, when it holds a resumable run (``checkpoint_last.pt``) and
``--resume`` is given, or when ``--overwrite`` is given (the previous run's files are then deleted, and
nothing else). Anything else — e.g. trained weights without a resume checkpoint — is refused, so a run
never overwrites another's weights. While a run is active it holds an exclusive POSIX record lock (``fcntl.lockf``) on
``DIR/train.lock``; the kernel releases it when the process ends, however it ends, so a killed run leaves no
stale lock. A second run on the same folder fails at once. A record lock, unlike ``flock``, is not inherited
by forked DataLoader workers, so a killed run's workers, still exiting, do not keep the folder locked.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import IO

from mobilebone.atomic import atomic_open
from mobilebone.training.checkpointing import RESUME_FILE
from mobilebone.training.errors import RunDirError

LOCK_FILE = "train.lock"
# What a run writes; --overwrite deletes exactly these before starting again.
RUN_FILES = (
    "config.json",
    "metrics.csv",
    RESUME_FILE,
    "model_best.safetensors",
    "model_last.safetensors",
    "model_deploy.safetensors",
    "tensorboard",
)


def describe_os_error(err: OSError, path: Path | str) -> str:
    """One line: the path and the operating system's reason (e.g. ``/runs/a/x.pt: No space left on device``)."""
    where = err.filename or path
    reason = err.strerror or (errno.errorcode.get(err.errno or 0) if err.errno else None) or str(err)
    return f"{where}: {reason}"


def _contents(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE and not p.name.startswith("."))


# Lock files this process holds: POSIX record locks never conflict within one process, so a second
# RunLock on the same folder from this process is refused here.
_HELD: set[Path] = set()


class RunLock:
    """An exclusive, non-blocking ``lockf`` on ``DIR/train.lock``; ``release()`` (or process exit) frees it."""

    def __init__(self, out: Path) -> None:
        import fcntl

        self.path = out / LOCK_FILE
        self.created = not self.path.exists()
        key = self.path.resolve()
        self.handle: IO[str] | None = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held open)
        try:
            if key in _HELD:
                raise BlockingIOError
            fcntl.lockf(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: another process holds it
            self.handle.close()
            self.handle = None
            raise RunDirError(
                f"{out} is in use by another training run (it holds the lock {self.path}); wait for it to "
                f"finish or choose another --out"
            ) from None
        _HELD.add(key)
        self.key = key
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"{os.getpid()}\n")
        self.handle.flush()

    def release(self, *, remove: bool = False) -> None:
        """Free the lock (and delete the lock file when ``remove``)."""
        if self.handle is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        self.handle.close()  # closing the descriptor releases the record lock
        self.handle = None
        _HELD.discard(self.key)


def open_run_dir(out: Path, *, resuming: bool, overwrite: bool) -> RunLock:
    """Create ``out`` if needed, lock it and check that this run may write there; returns the held lock."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"--out {out}: cannot create it: {describe_os_error(err, out)}") from None
    try:
        lock = RunLock(out)
    except OSError as err:
        raise RunDirError(
            f"--out {out}: cannot write in it: {describe_os_error(err, out / LOCK_FILE)}"
        ) from None
    try:
        _check_contents(out, resuming=resuming, overwrite=overwrite)
    except BaseException:
        lock.release(remove=lock.created)
        raise
    return lock


def _check_contents(out: Path, *, resuming: bool, overwrite: bool) -> None:
    if resuming:
        return  # the resume checkpoint was read already; the run continues in place
    contents = _contents(out)
    if not contents:
        return
    if overwrite:
        for name in RUN_FILES:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        return
    shown = ", ".join(contents[:4]) + (", …" if len(contents) > 4 else "")
    if RESUME_FILE in contents:
        raise RunDirError(
            f"{out} already holds a run; pass --resume to continue it, --overwrite to start it again, or "
            f"choose another --out"
        )
    raise RunDirError(
        f"--out {out} is not empty ({shown}) and holds no resumable run ({RESUME_FILE}); choose another "
        f"--out, or pass --overwrite to replace the run files in it"
    )


def write_config(out: Path, text: str) -> None:
    """``config.json``, written atomically."""
    with atomic_open(out / "config.json") as handle:
        handle.write(text.encode("utf-8") + b"\n")
