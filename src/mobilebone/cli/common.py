"""Small helpers shared by subcommands."""

from __future__ import annotations

import sys

from rich.console import Console


def console() -> Console:
    """A rich console that does not squeeze tables when stdout is a pipe or a file."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def expand_model_names(patterns: list[str]) -> list[str]:
    """Expand names and shell-style globs against the registry (unknown plain names are kept: they error later)."""
    from mobilebone import list_models

    names: list[str] = []
    for pattern in patterns:
        matched = list_models(pattern) if any(c in pattern for c in "*?[") else [pattern]
        if not matched:
            raise ValueError(f"no model matches {pattern!r}; run `mobilebone list`")
        names.extend(n for n in matched if n not in names)
    return names


def at_least(flag: str, value: int | float, minimum: int | float) -> None:
    """Raise a one-line ``ValueError`` naming ``flag`` unless ``value >= minimum``."""
    if value < minimum:
        raise ValueError(f"{flag} must be >= {minimum:g}, got {value:g}")


def resolve_runtimes(requested: list[str]) -> tuple[str, ...]:
    """Runtime names from ``--runtimes`` (space- or comma-separated, ``auto`` allowed), unavailable ones rejected."""
    from mobilebone.analysis.runtimes import check_runtime

    names: list[str] = []
    for item in requested:
        for name in filter(None, (n.strip() for n in item.split(","))):
            resolved = check_runtime(name)
            if resolved not in names:
                names.append(resolved)
    if not names:
        raise ValueError("--runtimes needs at least one runtime")
    return tuple(names)
