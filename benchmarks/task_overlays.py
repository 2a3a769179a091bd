"""Overlay pictures of trained task models on held-out images of the embedded shapes set (docs/tasks.md).

Writes the first ``--count`` images of the ``val`` split as PNG files, then runs the two user commands on
them, exactly as a user would:

    mobilebone detect  IMAGES --weights DET --out-dir OUT --score-thresh 0.5
    mobilebone segment IMAGES --weights SEG --out-dir OUT

    python benchmarks/task_overlays.py --detector runs/det/model_deploy.safetensors \
        --segmenter runs/seg/model_deploy.safetensors --out docs/img/tasks

The printed detections are written to ``OUT/detections.txt`` and ``OUT/segmentation.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

from torchvision.transforms.v2.functional import to_pil_image

from mobilebone.cli.main import main as cli
from mobilebone.tasks.checkpoint import read_task_metadata
from mobilebone.tasks.data.synthetic import SyntheticShapes


def held_out_images(out: Path, count: int, size: int, seed: int = 0) -> list[str]:
    """The first ``count`` held-out images at ``size`` px as PNG files in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = SyntheticShapes("val", length=count, size=size, seed=seed)
    paths = []
    for index in range(count):
        image, _ = data[index]
        path = out / f"val_{index:03d}.png"
        to_pil_image(image).save(path)
        paths.append(str(path))
    return paths


def run_command(argv: list[str], log: Path) -> None:
    """Run one ``mobilebone`` command in this process; its output goes to ``log`` and the console."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli(argv)
    log.write_text(f"$ mobilebone {' '.join(argv)}\n{buffer.getvalue()}")
    print(buffer.getvalue(), end="")
    if code != 0:
        raise SystemExit(f"mobilebone {argv[0]} failed with exit code {code}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--detector", type=Path, required=True, help="detection task-model weights")
    parser.add_argument("--segmenter", type=Path, required=True, help="segmentation task-model weights")
    parser.add_argument("--out", type=Path, required=True, help="folder for the images and overlays")
    parser.add_argument("--count", type=int, default=3, help="held-out images (default 3)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for weights, task in ((args.detector, "detection"), (args.segmenter, "segmentation")):
        size = int(json.loads(read_task_metadata(weights)["training_config"])["input_size"])
        images = held_out_images(args.out / task, args.count, size)
        command = "detect" if task == "detection" else "segment"
        extra = ["--score-thresh", "0.5"] if task == "detection" else []
        argv = [command, *images, "--weights", str(weights), "--out-dir", str(args.out), *extra]
        run_command(argv, args.out / f"{task}.txt")


if __name__ == "__main__":
    main()
