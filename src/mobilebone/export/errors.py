"""The one error type export raises: a ``ValueError`` the CLI prints as a single line."""

from __future__ import annotations


class ExportError(ValueError):
    """Export, conversion or verification failed; no output file was left behind."""
