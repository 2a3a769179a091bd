"""Reading checkpoint files safely: safetensors, or ``torch.load(weights_only=True)``; never pickled code.

A pickle can run arbitrary code while it is loaded, so PyTorch files are read only with the restricted
``weights_only`` unpickler; a file whose pickle names a callable (a "code payload") is refused with a
message that names it. Wrappers (``state_dict`` / ``model`` / EMA entries, DDP's ``module.``,
``torch.compile``'s ``_orig_mod.``) are removed so every reader returns a flat ``{key: tensor}`` dict.
"""

from __future__ import annotations

import argparse
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mobilebone.checkpoints.errors import CheckpointError

SUFFIXES = (".safetensors", ".pth", ".pth.tar", ".pt", ".bin", ".ckpt")
# Preferred first: EMA weights evaluate better, which is why training checkpoints keep them (timm's order).
WRAPPER_KEYS = ("state_dict_ema", "model_ema", "ema", "state_dict", "model")
NOISE_PREFIXES = ("module.", "_orig_mod.")
_SAFE_EXTRA_GLOBALS: list[Any] = [argparse.Namespace]  # timm training checkpoints store their ``args`` as one

StateDict = dict[str, Tensor]
# The marker ``mobilebone.training.checkpointing`` writes into resume checkpoints (checked equal by a test).
TRAIN_STATE_FORMAT = "mobilebone-train-state"


ACCEPTED = (
    "mobilebone reads .safetensors files and PyTorch checkpoints written by torch.save "
    "(.pth, .pth.tar, .pt, .bin, .ckpt)"
)
AGAIN = "download or save it again"


def _fail(path: Path, problem: str, fix: str) -> CheckpointError:
    return CheckpointError(f"cannot load {path}: {problem}; {fix}")


def _looks_like_text(head: bytes) -> bool:
    """True when the first bytes decode as UTF-8 and are (almost) all printable or whitespace."""
    for cut in range(4):  # the 512-byte window may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return bool(text) and sum(c.isprintable() or c in "\t\r\n" for c in text) >= 0.95 * len(text)
    return False


def unreadable(path: Path, expected: str = "checkpoint") -> CheckpointError:
    """A one-line error for a file that could not be read, saying what its first bytes show it is."""
    with path.open("rb") as handle:
        head = handle.read(512)
    if head.startswith(b"PK\x03\x04"):
        return _fail(path, "it is a PyTorch checkpoint whose zip archive is truncated or corrupted", AGAIN)
    if head[:1] == b"\x80":
        return _fail(path, "it is a truncated or corrupted pickle (an old-style PyTorch checkpoint)", AGAIN)
    if head[8:10] == b'{"':  # 8-byte header length, then the JSON header
        return _fail(path, "it is a truncated or corrupted safetensors file", AGAIN)
    if head.startswith(b"\x89HDF"):
        what = "an HDF5 file (Keras?)"
    elif head.startswith(b"\x1f\x8b"):
        what = "a gzip archive (unpack it first)"
    elif _looks_like_text(head):
        what = "a text file"
    else:
        what = "a binary file of unknown type"
    noun = "safetensors file" if expected == "safetensors" else "checkpoint"
    return _fail(path, f"it is {what}, not a {noun}", ACCEPTED)


def is_safetensors(path: Path) -> bool:
    """True when the file starts like a safetensors file: 8-byte header length, then a JSON object."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < header_len <= path.stat().st_size - 8


def is_torch_file(path: Path) -> bool:
    """True when the file starts like ``torch.save`` output: a zip archive or an old-style pickle."""
    with path.open("rb") as handle:
        head = handle.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def check_file(path: str | Path) -> Path:
    """Resolve ``path`` and raise a clear error for a missing, non-file or empty checkpoint."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}; check the path")
    if not path.is_file():
        raise _fail(path, "it is not a file", "pass the checkpoint file itself")
    if path.stat().st_size == 0:
        raise _fail(path, "the file is empty", AGAIN)
    return path


def read_safetensors(path: Path) -> tuple[StateDict, dict[str, str]]:
    """Tensors and metadata of a safetensors file (corruption raises ``CheckpointError``)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:  # type: ignore[no-untyped-call]
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError):
        raise unreadable(path, "safetensors") from None
    return tensors, metadata


def _pickled_globals(data: bytes) -> list[str]:
    """Names of the callables a pickle stream imports, found by reading its opcodes (nothing executed)."""
    names: list[str] = []
    strings: list[str] = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL" and isinstance(arg, str):
            names.append(arg.replace(" ", "."))
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            names.append(f"{strings[-2]}.{strings[-1]}")
        elif isinstance(arg, str):
            strings.append(arg)
    return names


def _describe_refusal(path: Path, message: str) -> CheckpointError:
    """Turn the weights-only unpickler's refusal into either "code payload" or "corrupted"."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    culprit = found.group(1) if found else None
    if culprit is None and not zipfile.is_zipfile(path):
        # A plain (non-zip) pickle: list what it would import, without running it.
        try:
            allowed = ("torch.", "collections.OrderedDict", "builtins.set", "_codecs.encode")
            foreign = [n for n in _pickled_globals(path.read_bytes()) if not n.startswith(allowed)]
            culprit = foreign[0] if foreign else None
        except Exception:
            culprit = None
    if culprit is not None:
        return _fail(
            path,
            f"it contains pickled code ({culprit}) that would run when loaded, so it was refused",
            "mobilebone only reads tensors; if you trust the file, re-save its state dict "
            "(torch.save(model.state_dict(), ...)) or convert it to .safetensors",
        )
    return unreadable(path)


def read_torch(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True`` on the CPU, errors turned into one-line messages."""
    try:
        with torch.serialization.safe_globals(_SAFE_EXTRA_GLOBALS), warnings.catch_warnings():
            # Plain pickles (protocol > 2) trigger a torch warning; the refusal below says it all.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            # A file object, not the path: torch.load picks its reader by the name's suffix, and a
            # PyTorch file named *.safetensors must still be read as what it is.
            with path.open("rb") as handle:
                return torch.load(handle, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise _describe_refusal(path, str(err)) from None
    # Arbitrary bytes make the unpickler fail in arbitrary ways (IndexError, struct.error, ...).
    except Exception:
        raise unreadable(path) from None


def strip_prefixes(state_dict: Mapping[str, Tensor]) -> StateDict:
    """Remove DDP's ``module.`` and torch.compile's ``_orig_mod.`` from the front of every key."""
    out: StateDict = {}
    for key, value in state_dict.items():
        while key.startswith(NOISE_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def unwrap(obj: Any, origin: str = "checkpoint") -> StateDict:
    """The flat tensor dict inside a (possibly wrapped) checkpoint object."""
    for _ in range(3):  # e.g. {"model": {"state_dict": {...}}}
        if not isinstance(obj, Mapping):
            break
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping) and obj[k]), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not obj:
        kind = "an empty dict" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise CheckpointError(
            f"{origin} holds {kind}, not a state dict; save model.state_dict() (or a dict with a "
            f"'state_dict' entry)"
        )
    tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors or any(not isinstance(k, str) for k in obj):
        sample = ", ".join(repr(k) for k in list(obj)[:5])
        raise CheckpointError(
            f"{origin} is not a state dict (top-level entries: {sample}); expected tensors or one of "
            f"the entries {', '.join(WRAPPER_KEYS)}"
        )
    if len(tensors) != len(obj):
        others = ", ".join(repr(k) for k in obj if k not in tensors)
        raise CheckpointError(f"{origin} mixes tensors with other entries ({others[:200]}); not a state dict")
    return strip_prefixes(tensors)


def read_checkpoint(path: str | Path) -> tuple[StateDict, dict[str, str]]:
    """Read a checkpoint file (any supported format) safely: its flat state dict and its metadata."""
    path = check_file(path)
    # The content decides, not the name: a .pth renamed .safetensors is still a PyTorch file.
    if is_safetensors(path):
        tensors, metadata = read_safetensors(path)
        return strip_prefixes(tensors), metadata
    if path.name.endswith(".safetensors") and not is_torch_file(path):
        raise unreadable(path, "safetensors")
    obj = read_torch(path)
    if isinstance(obj, Mapping) and obj.get("format") == TRAIN_STATE_FORMAT:
        raise CheckpointError(
            f"{path} is a training-resume checkpoint (for `mobilebone train --resume`); pass the run's "
            f"model_best.safetensors or model_deploy.safetensors, which record the model and its preprocessing"
        )
    return unwrap(obj, origin=str(path)), {}
