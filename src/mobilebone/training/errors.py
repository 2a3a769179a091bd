"""Errors that end a training run with one clear line (the CLI prints them and exits with status 2)."""

from __future__ import annotations


class TrainingError(ValueError):
    """A run that cannot start or must stop; the message says why and what to do."""


class RunDirError(TrainingError):
    """The run folder cannot be used: not resumable, locked by another run, or not writable."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; nothing after the last good checkpoint was saved."""


class DeployMismatchError(TrainingError):
    """The deploy (reparameterized) form scored differently from the train-time form beyond the tolerance."""
