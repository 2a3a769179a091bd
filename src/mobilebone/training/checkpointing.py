"""Resume checkpoints: a plain dict of tensors and numbers, written atomically, read with ``weights_only``.

What a resume needs: model, EMA, optimizer, scheduler and grad-scaler state, every RNG state of every rank
(python, numpy, torch, CUDA — as tensors), the position (epoch, batches done in it, global step), the
best score so far and the config (a JSON string). Nothing is pickled as an object, so reading a checkpoint
never runs code (``torch.load(weights_only=True)``). A write goes through ``mobilebone.atomic``: a
temporary file that is fsynced and then renamed over the old one (``os.replace`` is atomic), so a process
killed mid-write, or a write that fails (disk full), leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mobilebone.atomic import atomic_open

STATE_FORMAT = "mobilebone-train-state"
STATE_VERSION = 1
RESUME_FILE = "checkpoint_last.pt"


def rng_state() -> dict[str, torch.Tensor]:
    """This process's RNG states as tensors (python's Mersenne Twister words, numpy's, torch's, CUDA's)."""
    version, words, gauss = random.getstate()
    _np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    state = {
        "python": torch.tensor([version, *words], dtype=torch.int64),
        "python_gauss": torch.tensor([float("nan") if gauss is None else gauss], dtype=torch.float64),
        "numpy_keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": torch.tensor([np_pos, np_has_gauss], dtype=torch.int64),
        "numpy_gauss": torch.tensor([np_gauss], dtype=torch.float64),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    """Restore what ``rng_state`` captured."""
    python = [int(v) for v in state["python"].tolist()]
    gauss = float(state["python_gauss"][0])
    random.setstate((python[0], tuple(python[1:]), None if gauss != gauss else gauss))
    pos, has_gauss = (int(v) for v in state["numpy_pos"].tolist())
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, pos, has_gauss, float(state["numpy_gauss"][0])))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def atomic_torch_save(obj: dict[str, Any], path: Path) -> Path:
    """``torch.save`` to a temporary file in ``path``'s folder, fsync, then ``os.replace`` onto ``path``.

    The checkpoint is serialized in memory first: torch's zip writer turns a failing file write into a
    vague ``RuntimeError`` ("unexpected pos ..."), while a plain ``write`` raises the ``OSError`` (e.g.
    ENOSPC) that names the cause. A failed write carries ``path`` as its ``filename``.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    try:
        with atomic_open(path) as file:
            file.write(buffer.getbuffer())
    except OSError as err:
        err.filename = str(path)
        raise
    return path


def save_state(path: Path, state: dict[str, Any]) -> Path:
    """Write a resume checkpoint (adds the format marker)."""
    return atomic_torch_save({"format": STATE_FORMAT, "version": STATE_VERSION, **state}, path)


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a resume checkpoint safely; a missing, foreign or corrupted file raises a one-line error."""
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / RESUME_FILE
    if not file.is_file():
        raise FileNotFoundError(f"no resume checkpoint at {file}; was the run started with this --out?")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refusals, truncated zip files, …: one line, not a traceback
        raise ValueError(
            f"cannot read resume checkpoint {file}: {type(err).__name__}; it is corrupted"
        ) from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{file} is not a mobilebone training checkpoint")
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"{file} has state version {state.get('version')}; this mobilebone reads {STATE_VERSION}"
        )
    return state


def restore_state(state: dict[str, Any], parts: dict[str, Any]) -> None:
    """Load each part's ``state_dict`` from ``state`` (model, ema, optimizer, scheduler, scaler)."""
    for name, part in parts.items():
        if part is not None:
            part.load_state_dict(state[name])
