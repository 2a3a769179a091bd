"""PyTorch → TorchScript: ``torch.jit.trace`` of the deploy model, saved, reloaded and verified."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from mobilebone.export.errors import ExportError
from mobilebone.export.prepare import atomic_output, example_input, prepare_for_export, reference_output
from mobilebone.export.verify import ExportReport, compare


def to_torchscript(
    model: nn.Module,
    path: str | Path,
    *,
    input_size: int | tuple[int, int] = 224,
    batch_size: int = 1,
    dynamic_batch: bool = False,
    verify: bool = True,
    rtol: float = 1e-5,
) -> ExportReport:
    """Trace the reparameterized ``model`` to TorchScript at ``path``; the reloaded file is verified.

    Returns the path written and the verifications run; raises ``ExportError`` (no file) on failure.
    """
    deploy = prepare_for_export(model)
    x = example_input(deploy, input_size, batch_size)
    expected = reference_output(deploy, x)
    with atomic_output(path) as tmp:
        try:
            with warnings.catch_warnings():
                # TracerWarnings from input-shape checks; torch.jit's deprecation notice.
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(deploy, (x,), check_trace=False)
                torch.jit.save(traced, str(tmp))
        except Exception as err:
            raise ExportError(
                f"TorchScript trace failed: {type(err).__name__}: {str(err).splitlines()[0]}"
            ) from err
        report = ExportReport(Path(path))
        results = report.verifications
        if verify:
            # Verify what users will load: the saved file, not the in-memory trace.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                loaded = torch.jit.load(str(tmp))
            with torch.no_grad():
                results.append(compare("torchscript", x, loaded(x), expected, rtol))
                if dynamic_batch:
                    x2 = example_input(deploy, input_size, batch_size + 1, seed=1)
                    results.append(compare("torchscript", x2, loaded(x2), reference_output(deploy, x2), rtol))
    return report
