"""A short, time-boxed training run of a task model on the embedded shapes set, scored on its held-out split.

This is an experiment harness, not the resumable training loop of ``mobilebone train`` (integrating the
tasks there is pending). It reuses that loop's optimizer pieces: ``param_groups`` (no weight decay on norms
and biases) and the warm-up + cosine ``lr_factor``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from mobilebone.tasks.data.synthetic import SyntheticShapes
from mobilebone.tasks.data.transforms import detection_transforms, segmentation_transforms
from mobilebone.tasks.factory import create_detector, create_segmenter
from mobilebone.tasks.metrics import DetectionMetric, SegmentationMetric
from mobilebone.tasks.registry import get_task_entry
from mobilebone.tasks.reparam import reparameterize_task_model
from mobilebone.training.optim import lr_factor, param_groups


@dataclass
class SyntheticRunConfig:
    """Every setting of a run (saved with its result)."""

    model: str = "ssdlite_mobilenetv4_conv_small"
    minutes: float = 10.0  # training wall-time budget; the scheduler assumes ``steps``
    steps: int = 1500
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    image_size: int = 160  # the model's input size; images are resized to it
    data_size: int = 160  # the size the shapes are drawn at (the held-out split is scored at this size)
    val_images: int = 128
    seed: int = 0
    threads: int = 2
    backbone_weights: str = ""  # a classification checkpoint for the backbone ("" = from scratch)
    log_every: int = 0  # print step, loss and s/step every N steps (0 = silent)


def _collate(batch: list[Any]) -> tuple[list[Any], list[Any]]:
    return [b[0] for b in batch], [b[1] for b in batch]


def _evaluate(model: nn.Module, detection: bool, cfg: SyntheticRunConfig) -> dict[str, float]:
    # Detectors resize inside and map boxes back; segmentation logits are resized back to the labels.
    transforms = detection_transforms(False) if detection else segmentation_transforms(False, None)
    data = SyntheticShapes(
        "val", length=cfg.val_images, size=cfg.data_size, seed=cfg.seed, transforms=transforms
    )
    loader = DataLoader(data, batch_size=16, collate_fn=_collate)
    model.eval()
    if detection:
        det_metric = DetectionMetric()
        with torch.no_grad():
            for images, targets in loader:
                det_metric.update(model(images), targets)
        scores = det_metric.compute()
        return {"map": scores.map, "map_50": scores.map_50}
    seg_metric = SegmentationMetric(len(SyntheticShapes.classes))
    with torch.no_grad():
        for images, targets in loader:
            batch = nn.functional.interpolate(
                torch.stack(images), size=(cfg.image_size, cfg.image_size), mode="bilinear", antialias=True
            )
            logits = nn.functional.interpolate(
                model(batch)["out"], size=(cfg.data_size, cfg.data_size), mode="bilinear"
            )
            seg_metric.update(logits, torch.stack([t["semantic"] for t in targets]))
    seg = seg_metric.compute()
    return {"miou": seg.miou, "pixel_accuracy": seg.pixel_accuracy}


def run_synthetic(cfg: SyntheticRunConfig) -> dict[str, Any]:
    """Train ``cfg.model`` (backbone from scratch or ``cfg.backbone_weights``) for ``cfg.steps`` steps or at
    most ``cfg.minutes``; score it, then its deploy form."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    entry = get_task_entry(cfg.model)
    detection = entry.task == "detection"
    num_classes = len(SyntheticShapes.classes)
    weights = cfg.backbone_weights or None
    if detection:
        model = create_detector(
            cfg.model, num_classes=num_classes, backbone_weights=weights, size=cfg.image_size
        )
        transforms = detection_transforms(True)
    else:
        model = create_segmenter(cfg.model, num_classes=num_classes, backbone_weights=weights)
        transforms = segmentation_transforms(True, cfg.image_size)
    # A fresh training image per step: the set is generated, so it never repeats.
    data = SyntheticShapes(
        "train", length=cfg.steps * cfg.batch_size, size=cfg.data_size, seed=cfg.seed, transforms=transforms
    )
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=False, collate_fn=_collate, drop_last=True)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)  # type: ignore[arg-type]
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_factor(s, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps, min_factor=0.01),
    )
    start, step, losses = time.perf_counter(), 0, []
    model.train()
    for images, targets in loader:
        if detection:
            det_targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
            loss = sum(model(images, det_targets).values())
        else:
            out = model(torch.stack(images))
            semantic = torch.stack([t["semantic"] for t in targets]).long()
            loss = nn.functional.cross_entropy(out["out"], semantic, ignore_index=255)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))  # type: ignore[union-attr]
        step += 1
        if cfg.log_every and step % cfg.log_every == 0:
            recent = losses[-cfg.log_every :]
            seconds = (time.perf_counter() - start) / step
            print(f"step {step} loss {sum(recent) / len(recent):.4f} {seconds:.2f} s/step", flush=True)
        if time.perf_counter() - start > cfg.minutes * 60:
            break
    train_s = time.perf_counter() - start
    scores = _evaluate(model, detection, cfg)
    fused_scores = _evaluate(reparameterize_task_model(model), detection, cfg)
    return {
        "config": asdict(cfg),
        "steps_done": step,
        "train_seconds": round(train_s, 1),
        "seconds_per_step": round(train_s / max(1, step), 3),
        "final_loss_mean_last_20": sum(losses[-20:]) / max(1, len(losses[-20:])),
        "held_out": scores,
        "held_out_fused": fused_scores,
        "torch": torch.__version__,
        "threads": cfg.threads,
    }


def main() -> None:
    """``python -m mobilebone.tasks.train --model NAME --minutes M --out FILE.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    defaults = SyntheticRunConfig()
    for field, value in asdict(defaults).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out", type=Path, required=True)
    args = vars(parser.parse_args())
    out = args.pop("out")
    result = run_synthetic(SyntheticRunConfig(**args))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
