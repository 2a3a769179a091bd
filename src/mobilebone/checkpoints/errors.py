"""The one exception type of the checkpoint package: a user error with a one-line, actionable message."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says how to fix it.

    ``cli_message``, when given, is the same message with command-line advice instead of Python advice
    (``--weights PATH`` rather than ``create_model(..., pretrained=PATH)``); the CLI prints it.
    """

    def __init__(self, message: str, *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message or message
