"""Atomic file output: write beside the target, fsync, give it the usual permissions, rename into place.

Every writer of a file users keep (native checkpoints, resume checkpoints, exported models) goes through
here, so an interrupted or failed write never leaves half a file under the requested name, and an
existing file there stays untouched until the new one is complete. ``os.replace`` is atomic only within
one file system, hence the temporary sibling in the same folder. ``tempfile.mkstemp`` would create the
file with mode 0600; the result instead gets the mode a plain ``open()`` would give it
(``0o666 & ~umask``, directories ``0o777 & ~umask``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_open", "atomic_path", "default_mode"]


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: ``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere the only way is to set it and restore it at once (briefly visible to other threads).
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def default_mode(directory: bool = False) -> int:
    """The permission bits ``open()`` / ``mkdir()`` give a new file (or directory) under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def _missing_parents(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    return missing


def _fsync(path: Path) -> None:
    """Flush a file, or every file and folder of a directory tree, to disk."""
    if path.is_dir():
        for root, _, files in os.walk(path):
            for name in files:
                _fsync(Path(root) / name)
            _fsync_dir(Path(root))
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Persist a folder's entries (a rename is only durable once its directory is synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Delete a file or a directory tree, ignoring absence."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _commit(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` onto ``target`` (a file, or a directory such as an ``.mlpackage``)."""
    _fsync(tmp)
    os.chmod(tmp, default_mode(directory=tmp.is_dir()))
    if target.is_dir() and not target.is_symlink():
        # os.replace cannot overwrite a non-empty directory: move the old one aside, then delete it.
        old = tmp.with_name(tmp.name + ".old")
        os.replace(target, old)
        os.replace(tmp, target)
        _remove(old)
    else:
        os.replace(tmp, target)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path`` for a writer that takes a path (file or directory).

    The writer must create it; on success it is fsynced, given the default permissions and renamed onto
    ``path``. On any error (or if nothing was written) it is removed, ``path`` is left as it was, and
    folders created for it are removed again. Missing parent folders are created.
    """
    target = Path(path).expanduser()
    created = _missing_parents(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp reserves a unique name; the writer then creates the file (or directory) itself.
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        _commit(tmp, target)
    except BaseException:
        _remove(tmp)
        for folder in created:  # deepest first; only folders this call made, and only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary file open on a temporary sibling of ``path`` (for ``torch.save`` and other streams);
    on success it replaces ``path`` as ``atomic_path`` does."""
    with atomic_path(path) as tmp, tmp.open("xb") as handle:
        yield handle
        handle.flush()
