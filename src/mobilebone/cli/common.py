"""Small helpers shared by subcommands: console, name lists, and the validators of shared flags.

Every validator raises a one-line ``ValueError`` naming the flag (the CLI prints it as
``mobilebone CMD: error: ...`` and exits 2) before any work is done.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mobilebone.analysis.environment import usable_cores
from mobilebone.limits import MAX_INPUT_SIZE, MIN_INPUT_SIZE

if TYPE_CHECKING:
    from rich.console import Console


def console() -> Console:
    """A rich console that does not squeeze tables when stdout is a pipe or a file."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def split_names(values: Iterable[str]) -> list[str]:
    """Names given space- or comma-separated (``--models a,b c`` → ``[a, b, c]``), duplicates dropped."""
    names: list[str] = []
    for value in values:
        for name in (n.strip() for n in value.split(",")):
            if name and name not in names:
                names.append(name)
    return names


def expand_model_names(patterns: list[str]) -> list[str]:
    """Expand names (space- or comma-separated) and shell-style globs against the registry.

    An unknown plain name is a one-line error listing the closest registered names.
    """
    import difflib

    from mobilebone import list_models

    known = list_models()
    names: list[str] = []
    for pattern in split_names(patterns):
        if any(c in pattern for c in "*?["):
            matched = list_models(pattern)
        else:
            matched = [pattern] if pattern.split(".", 1)[0] in known else []
        if not matched:
            close = difflib.get_close_matches(pattern.split(".", 1)[0], known, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"unknown model {pattern!r}{hint}; run `mobilebone list`")
        names.extend(n for n in matched if n not in names)
    return names


def at_least(flag: str, value: int | float, minimum: int | float) -> None:
    """Raise a one-line ``ValueError`` naming ``flag`` unless ``value >= minimum``."""
    if value < minimum:
        raise ValueError(f"{flag} must be >= {minimum:g}, got {value:g}")


def check_threads(value: int | None, flag: str = "--threads") -> int:
    """``--threads``, defaulting to the usable cores; < 1 or more than the usable cores is refused.

    Refused rather than clamped: more threads than cores makes every thread wait for a descheduled
    sibling, so a latency measured that way is inflated many times and would be saved as if it were real.
    """
    cores = usable_cores()
    if value is None:
        return cores
    if value < 1:
        raise ValueError(f"{flag} must be >= 1, got {value}")
    if value > cores:
        raise ValueError(
            f"{flag} {value} is more than the {cores} cores this process may use; use 1 to {cores}"
        )
    return int(value)


def check_input_size(value: int | None, flag: str = "--input-size") -> int | None:
    """Refuse a square input side outside [MIN_INPUT_SIZE, MAX_INPUT_SIZE]; ``None`` (the default) passes."""
    if value is None:
        return None
    if not MIN_INPUT_SIZE <= value <= MAX_INPUT_SIZE:
        message = f"{flag} must be between {MIN_INPUT_SIZE} and {MAX_INPUT_SIZE}, got {value}"
        if value > MAX_INPUT_SIZE:
            # Input tensor plus the first stride-2 feature map (~32 channels at half the side), fp32.
            needed = 4 * value * value * (3 + 32 / 4)
            message += f" (one image would need about {needed / 1e9:,.1f} GB before the first block)"
        raise ValueError(message)
    return int(value)


def check_output_path(value: str, flag: str = "--out") -> Path:
    """Refuse an output path that cannot be written: ``-``, a parent that is a file, a read-only folder."""
    if value in ("", "-"):
        raise ValueError(f"{flag} {value!r} is not a file name (writing to stdout is not supported)")
    path = Path(value).expanduser()
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot write {flag} {value!r}: {str(parent)!r} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"cannot write {flag} {value!r}: folder {str(parent)!r} is not writable")
            break
    if path.exists() and not path.is_dir() and not os.access(path, os.W_OK):
        raise ValueError(f"cannot write {flag} {value!r}: the file is read-only")
    return path


def resolve_runtimes(requested: list[str]) -> tuple[str, ...]:
    """Runtime names from ``--runtimes`` (space- or comma-separated, ``auto`` allowed), unavailable ones rejected."""
    from mobilebone.analysis.runtimes import check_runtime

    names: list[str] = []
    for name in split_names(requested):
        resolved = check_runtime(name)
        if resolved not in names:
            names.append(resolved)
    if not names:
        raise ValueError("--runtimes needs at least one runtime")
    return tuple(names)
