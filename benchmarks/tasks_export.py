"""ONNX export of all 40 task models, each verified in ONNX Runtime against torch: the sweep the tests sample.

The default test suite exports every head on three backbones (``tests/test_tasks_models.py``); this runs
all forty (the same check as ``MOBILEBONE_ALL_TASK_EXPORTS=1 pytest -k exports_to_onnx``) and records, per
model, the status, the largest relative error of each output, the file size and the time taken, with the
environment, in ``benchmarks/results/tasks/onnx_export.json``. Models are built with torchvision's class
counts (91 detection, 21 segmentation), BatchNorm statistics calibrated on a batch holding the check's input, then fused and
exported at a small input (raw outputs: box regressions and class logits, or segmentation logits).

    .venv/bin/python benchmarks/tasks_export.py [--height 64] [--width 96] [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from mobilebone.analysis.environment import capture_environment
from mobilebone.analysis.report import write_atomic
from mobilebone.tasks import create_detector, create_segmenter, list_task_models, raw_outputs
from mobilebone.tasks.export import export_task_onnx_checked
from mobilebone.tasks.reparam import reparameterize_task_model
from mobilebone.testing import calibrate_batchnorm, float32_error

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "tasks" / "onnx_export.json"
RTOL = 1e-4  # export_task_onnx's default
FLOAT32_FACTOR = 4


def export_rtol(torch_float32_error: float) -> float:
    """1e-4, or 4x torch's own float32 error (vs float64) where the random model amplifies rounding more.

    ONNX Runtime is a second float32 implementation of the same graph: if it is within 2e of float64 where
    torch is within e, the two differ by at most 3e; 4e leaves margin. (Random-weight MobileOne-S4 task
    models reach e ~ 1e-3: its Squeeze-Excite gates amplify rounding, see ``calibrate_batchnorm``.)
    """
    return max(RTOL, FLOAT32_FACTOR * torch_float32_error)


def export_one(name: str, hw: tuple[int, int], folder: Path) -> dict[str, Any]:
    """Build, calibrate, fuse, export and verify ``name``; one row (``status`` ok or failed)."""
    start = time.perf_counter()
    row: dict[str, Any] = {"model": name}
    try:
        detection = name in list_task_models("detection")
        torch.manual_seed(0)  # the same random weights every run
        model = create_detector(name) if detection else create_segmenter(name)
        # Calibrate on a batch holding the very input the export check uses (seed 0, see export_task_onnx):
        # statistics from other images leave some deep, few-position channels amplifying float32 rounding.
        x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(0))
        calibrate_batchnorm(raw_outputs(model), torch.cat([x, torch.rand(1, 3, *hw)]))
        row["torch_float32_error"] = float32_error(raw_outputs(reparameterize_task_model(model)), x)
        row["rtol"] = export_rtol(row["torch_float32_error"])
        result = export_task_onnx_checked(
            model, folder / f"{name}.onnx", input_hw=hw, seed=0, rtol=row["rtol"]
        )
    except Exception as err:  # record and go on: one failure must not hide the others
        message = str(err).splitlines()[0] if str(err) else ""
        row.update(status="failed", error=f"{type(err).__name__}: {message}")
    else:
        row.update(status="ok", error=None, relative_errors=result.relative_errors)
        row["onnx_mb"] = result.path.stat().st_size / 1e6
    row["seconds"] = time.perf_counter() - start
    return row


def main() -> int:
    """Export every task model; write the JSON; exit 1 if any failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="*", help="glob over task model names (default: all)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hw = (args.height, args.width)
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mobilebone-task-onnx-") as folder:
        for name in list_task_models(pattern=args.models):
            row = export_one(name, hw, Path(folder))
            rows.append(row)
            errors = ", ".join(f"{k} {v:.1e}" for k, v in (row.get("relative_errors") or {}).items())
            print(
                f"{name:40s} {row['status']:6s} {row['seconds']:6.1f} s  {errors or row['error']}", flush=True
            )
    document = {
        "input_hw": list(hw),
        "rtol": f"max({RTOL:g}, {FLOAT32_FACTOR} x torch's float32 error vs float64), per model",
        "total_seconds": time.perf_counter() - start,
        "ok": sum(r["status"] == "ok" for r in rows),
        "failed": sum(r["status"] != "ok" for r in rows),
        "environment": capture_environment(args.threads, runtime="onnxruntime"),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(document, indent=1) + "\n")
    print(
        f"{document['ok']} ok, {document['failed']} failed in {document['total_seconds']:.0f} s; wrote {args.out}"
    )
    return 1 if document["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
