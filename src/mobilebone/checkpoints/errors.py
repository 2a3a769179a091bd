"""The one exception type of the checkpoint package: a user error with a one-line, actionable message."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says how to fix it."""
