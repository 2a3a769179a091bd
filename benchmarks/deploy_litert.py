"""The LiteRT candidate on fused MobileOne-S0 and MNv4-Conv-S: converted, run, compared with PyTorch.

Run in an environment with ``litert-torch`` (it cannot share one with an up-to-date torch stack, see
docs/export.md), e.g. ``python -m venv /tmp/litert && /tmp/litert/bin/pip install -e '.[litert]'``, then
``/tmp/litert/bin/python benchmarks/deploy_litert.py``.
"""

from __future__ import annotations

import importlib.metadata
import json
import tempfile
from pathlib import Path

import torch

import mobilebone
from mobilebone.backends.engine import check_parity
from mobilebone.deploy import get_runtime
from mobilebone.export.calibration import generated_images
from mobilebone.export.prepare import prepare_for_export
from mobilebone.testing import randomize_batchnorm

OUT = Path("benchmarks/results/deploy/litert.json")


def main() -> None:
    """Convert and compare each model at 64 px on two generated images; write the errors."""
    spec = get_runtime("litert")
    if not spec.available():
        raise SystemExit(f"litert is not installed here: {spec.install}")
    results = {
        "versions": {p: importlib.metadata.version(p) for p in ("torch", "litert-torch", "ai-edge-litert")}
    }
    for name in ("mobileone_s0", "mobilenetv4_conv_small"):
        model = prepare_for_export(randomize_batchnorm(mobilebone.create_model(name, num_classes=10)).eval())
        images = generated_images(2, {}, (64, 64), seed=3)
        with tempfile.TemporaryDirectory() as work:
            engine = spec.build(model, images[:1], images, 2, Path(work))
            with torch.inference_mode():
                expected = model(images)
            errors = [
                check_parity(spec.name, engine.infer(images[i : i + 1]), expected[i : i + 1], spec.rtol)
                for i in range(2)
            ]
        results[name] = {"input": [1, 3, 64, 64], "max_relative_error": errors}
        print(name, errors)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
