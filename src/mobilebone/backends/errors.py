"""The error every backend and runtime raises when its output differs from PyTorch's (imported without torch)."""


class RuntimeMismatch(ValueError):
    """A runtime's output differs from PyTorch eager's beyond tolerance, so its timing is not reported."""
