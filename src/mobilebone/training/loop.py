"""The training loop, readable top to bottom: data → model → optimizer → epochs → deploy.

One process or many (torchrun → DDP). Rank 0 logs and writes files. Every ``checkpoint_every`` steps and at
each epoch end a resume checkpoint is written; ``resume`` continues from it, mid-epoch included. At the end
the best weights are reloaded, reparameterized (MobileOne's branches fold into one conv per unit), evaluated
again and saved in deploy form.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mobilebone.training import checkpointing as ckpt
from mobilebone.training.config import TrainConfig, scaled_lr, validate
from mobilebone.training.data import (
    ResumableSampler,
    ShardSampler,
    Transformed,
    check_image_folder,
    image_folder,
    make_loader,
    train_transform,
)
from mobilebone.training.distributed import DistInfo, all_gather_tensor, all_reduce_sum, barrier, cleanup
from mobilebone.training.ema import make_ema
from mobilebone.training.evaluate import EvalResult, evaluate
from mobilebone.training.logging import RunLogger, progress
from mobilebone.training.optim import build_optimizer, build_scheduler, set_weight_decay

BEST_FILE, LAST_FILE, DEPLOY_FILE = (
    "model_best.safetensors",
    "model_last.safetensors",
    "model_deploy.safetensors",
)


@dataclass
class TrainResult:
    """What a finished run reports; the deploy file holds the reparameterized best weights."""

    out: Path
    best_top1: float
    train_form: EvalResult
    deploy_form: EvalResult
    epochs: int
    wall_s: float


def preprocessing(cfg: TrainConfig) -> dict[str, Any]:
    """The eval preprocessing of the trained weights (stored in their ``pretrained_cfg``)."""
    from mobilebone.registry import get_entry

    default = get_entry(cfg.model).default_cfg
    return {
        "input_size": (3, cfg.input_size, cfg.input_size),
        "crop_pct": cfg.crop_pct,
        "interpolation": cfg.interpolation,
        "mean": tuple(default["mean"]),
        "std": tuple(default["std"]),
    }


def build_datasets(cfg: TrainConfig) -> tuple[Any, Any, list[str]]:
    """Train and val data (PIL images + labels) and the class names: ImageFolder or the embedded set."""
    if cfg.data is None:
        from mobilebone.training.synthetic import SyntheticShapes

        train = SyntheticShapes(
            "train", cfg.embedded_train, num_classes=cfg.embedded_classes, seed=cfg.data_seed
        )
        val = SyntheticShapes("val", cfg.embedded_val, num_classes=cfg.embedded_classes, seed=cfg.data_seed)
        return train, val, train.classes
    train_dir, val_dir = check_image_folder(cfg.data)
    train, val = image_folder(train_dir), image_folder(val_dir)
    if train.classes != val.classes:
        raise ValueError(
            f"--data {cfg.data}: train/ has {len(train.classes)} classes and val/ has {len(val.classes)} "
            f"(or other names); both need the same class folders"
        )
    return train, val, list(train.classes)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if cfg.amp == "none" or (cfg.amp == "auto" and device.type != "cuda"):
        return None
    if cfg.amp == "fp16" or (cfg.amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _default_out(cfg: TrainConfig, info: DistInfo) -> str:
    """``runs/<model>-<date-time>``, picked by rank 0 and shared (ranks could disagree on the clock)."""
    chosen = [f"runs/{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"]
    if info.distributed:
        import torch.distributed as dist

        dist.broadcast_object_list(chosen, src=0)
    return chosen[0]


def _prepare_out(cfg: TrainConfig, info: DistInfo, resuming: bool) -> Path:
    if not cfg.out:
        cfg.out = _default_out(cfg, info)
    out = Path(cfg.out).expanduser()
    if not resuming and (out / ckpt.RESUME_FILE).exists():
        raise ValueError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / ".config.json.tmp"
        tmp.write_text(cfg.to_json() + "\n", encoding="utf-8")
        tmp.replace(out / "config.json")
    barrier(info)
    return out


def _save_native(
    model: nn.Module, path: Path, cfg: TrainConfig, classes: list[str], extra: dict[str, str]
) -> None:
    from mobilebone.checkpoints import save_native

    metadata = {"classes": json.dumps(classes), "training_config": cfg.to_json(), **extra}
    save_native(model, path, model_name=cfg.model, metadata=metadata)


def train(cfg: TrainConfig, *, resume: bool | str | Path = False) -> TrainResult:
    """Train ``cfg.model`` as ``cfg`` says; ``resume`` (True = ``cfg.out``, or a run dir / file) continues a run."""
    from mobilebone import create_model, reparameterize_model
    from mobilebone.training.distributed import init_distributed

    started = time.perf_counter()
    info = init_distributed()
    try:
        state: dict[str, Any] | None = None
        if resume:
            if resume is True and not cfg.out:
                raise ValueError("--resume needs the run folder: --out DIR --resume, or --resume DIR")
            where = Path(cfg.out if resume is True else resume).expanduser()
            state = ckpt.load_state(where)
            # The run continues with the settings it started with; only its folder comes from the caller.
            cfg = TrainConfig.from_json(state["config"])
            cfg.out = str(where.parent if where.is_file() else where)
        validate(cfg)
        out = _prepare_out(cfg, info, resuming=state is not None)
        _seed_everything(cfg.seed + info.rank)

        # ---- data: per-sample seeded augmentation, deterministic epoch order, sharded eval
        train_base, val_base, classes = build_datasets(cfg)
        pp = preprocessing(cfg)
        from mobilebone.transforms import eval_transform

        train_set = Transformed(
            train_base,
            train_transform(
                cfg.input_size,
                mean=pp["mean"],
                std=pp["std"],
                interpolation=cfg.interpolation,
                min_crop=cfg.min_crop,
                augment=cfg.augment,
            ),
            seed=cfg.seed,
        )
        val_set = Transformed(val_base, eval_transform(pp))
        sampler = ResumableSampler(
            train_set, rank=info.rank, world_size=info.world_size, seed=cfg.seed, drop_last=False
        )
        drop_last = len(sampler.inner) >= cfg.batch_size
        steps_per_epoch = len(sampler.inner) // cfg.batch_size if drop_last else 1
        pin = info.device.type == "cuda"
        train_loader = make_loader(
            train_set,
            sampler,
            batch_size=cfg.batch_size,
            workers=cfg.workers,
            drop_last=drop_last,
            pin_memory=pin,
            seed=cfg.seed,
        )
        val_loader = make_loader(
            val_set,
            ShardSampler(val_set, rank=info.rank, world_size=info.world_size),
            batch_size=cfg.batch_size,
            workers=cfg.workers,
            drop_last=False,
            pin_memory=pin,
            seed=cfg.seed,
        )

        # ---- model, EMA, DDP
        model = create_model(cfg.model, num_classes=len(classes), drop_path_rate=cfg.drop_path)
        model.pretrained_cfg = {**model.pretrained_cfg, **pp}  # type: ignore[dict-item,assignment]
        # channels_last on GPUs only: on CPUs, torch 2.14's oneDNN conv backward in channels_last crashes
        # (segfault or hang) on some x86 machines (an AMD EPYC here: 1x1 stride-2 conv, 3 input channels),
        # though it trained 1.5-1.9x faster on an Intel Xeon (docs/training.md).
        channels_last = cfg.channels_last and info.device.type == "cuda"
        model = model.to(info.device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        ema = make_ema(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        net: nn.Module = model
        if info.distributed:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[info.local_rank] if info.device.type == "cuda" else None
            )

        # ---- optimizer, schedules, mixed precision
        lr = scaled_lr(cfg, info.world_size)
        optimizer = build_optimizer(model, cfg, lr)
        scheduler = build_scheduler(optimizer, lr=lr, cfg=cfg, steps_per_epoch=steps_per_epoch)
        amp_dtype = _amp_dtype(cfg, info.device)
        scaler = torch.amp.GradScaler(info.device.type, enabled=amp_dtype == torch.float16)
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        total_steps = cfg.epochs * steps_per_epoch

        start_epoch, skip_steps, global_step, best_top1 = 0, 0, 0, -1.0
        if state is not None:
            model.load_state_dict(state["model"])
            if ema is not None:
                ema.load_state_dict(state["ema"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            start_epoch, skip_steps = int(state["epoch"]), int(state["step_in_epoch"])
            global_step, best_top1 = int(state["global_step"]), float(state["best_top1"])
            if int(state["world_size"]) == info.world_size:
                ckpt.set_rng_state({k: v[info.rank] for k, v in state["rng"].items()})
            elif skip_steps:
                raise ValueError(
                    f"the checkpoint was written mid-epoch by {state['world_size']} processes; resume with "
                    f"the same number (--nproc_per_node), or from an epoch-end checkpoint"
                )
        logger = RunLogger(
            out,
            enabled=info.is_main,
            purge_step=global_step if state is not None else None,
            epochs_done=start_epoch if state is not None else None,
        )

        def save_resume(epoch: int, step_in_epoch: int) -> None:
            rng = {
                k: all_gather_tensor(v, info) for k, v in ckpt.rng_state().items()
            }  # collective: all ranks
            if info.is_main:
                ckpt.save_state(
                    out / ckpt.RESUME_FILE,
                    {
                        "config": cfg.to_json(),
                        "model": model.state_dict(),
                        "ema": ema.state_dict() if ema is not None else {},
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(),
                        "rng": rng,
                        "epoch": epoch,
                        "step_in_epoch": step_in_epoch,
                        "global_step": global_step,
                        "best_top1": best_top1,
                        "world_size": info.world_size,
                    },
                )
            barrier(info)

        if info.is_main:
            print(
                f"training {cfg.model} ({cfg.recipe} recipe) on {cfg.data or 'the embedded shapes set'}: "
                f"{len(classes)} classes, {len(train_base)} train / {len(val_base)} val images, "
                f"{cfg.epochs} epochs × {steps_per_epoch} steps, global batch {cfg.batch_size * info.world_size}, "
                f"peak lr {lr:.4g}, {info.world_size} process(es) on {info.device.type}"
                + (f"; resuming at epoch {start_epoch + 1}, step {skip_steps}" if state is not None else ""),
                flush=True,
            )

        # ---- epochs
        for epoch in range(start_epoch, cfg.epochs):
            skip = skip_steps if epoch == start_epoch else 0
            train_set.set_epoch(epoch)
            sampler.set_epoch(epoch, skip=skip * cfg.batch_size)
            net.train()
            bar = progress(
                steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{cfg.epochs}", enabled=info.is_main
            )
            loss_sum = torch.zeros((), dtype=torch.float64)
            seen, tick = 0, time.perf_counter()
            wd = cfg.weight_decay
            step_in_epoch = skip
            for images, labels in train_loader:
                if step_in_epoch >= steps_per_epoch:
                    break
                images = images.to(info.device, non_blocking=True)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                labels = labels.to(info.device, non_blocking=True)
                wd = set_weight_decay(optimizer, cfg, global_step / max(1, total_steps))
                with torch.autocast(
                    info.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
                ):
                    loss = criterion(net(images), labels)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                global_step += 1
                step_in_epoch += 1
                loss_sum += loss.detach().double().cpu()
                seen += labels.numel()
                if info.is_main:
                    bar.update(1)
                    if global_step % cfg.log_every == 0 or step_in_epoch == steps_per_epoch:
                        # loss.item() waits for the device: only every log_every steps.
                        rate = seen * info.world_size / max(1e-9, time.perf_counter() - tick)
                        current_lr = optimizer.param_groups[0]["lr"]
                        bar.set_postfix(
                            loss=f"{loss.item():.3f}", lr=f"{current_lr:.3g}", img_s=f"{rate:.0f}"
                        )
                        logger.scalars(
                            global_step,
                            **{"train/loss": loss.item(), "train/lr": current_lr, "train/images_per_s": rate},
                        )
                if (
                    cfg.checkpoint_every
                    and global_step % cfg.checkpoint_every == 0
                    and step_in_epoch < steps_per_epoch
                ):
                    save_resume(epoch, step_in_epoch)
            bar.close()
            epoch_time = time.perf_counter() - tick
            totals = all_reduce_sum(
                torch.tensor(
                    [float(loss_sum), float(max(1, step_in_epoch - skip))],
                    device=info.device,
                    dtype=torch.float64,
                ),
                info,
            ).cpu()
            train_loss = float(totals[0] / totals[1])

            # ---- evaluate: the EMA weights when there are some (what gets deployed), and the raw model.
            # Each is scored in its reparameterized copy: the same function (tests: <= 1e-5 relative),
            # several times cheaper than the train-time branches (MobileOne-S0 ~5x on a CPU).
            evaluated = [ema.module, model] if ema is not None else [model]
            results = evaluate(
                [reparameterize_model(m) for m in evaluated],
                val_loader,
                info=info,
                amp_dtype=amp_dtype,
                channels_last=channels_last,
            )
            score = results[0]
            if info.is_main:
                deployable = ema.module if ema is not None else model
                extra = {"epoch": str(epoch + 1), "val_top1": f"{score.top1:.4f}"}
                if score.top1 > best_top1:
                    _save_native(deployable, out / BEST_FILE, cfg, classes, extra)
                _save_native(deployable, out / LAST_FILE, cfg, classes, extra)
                row = {
                    "epoch": epoch + 1,
                    "step": global_step,
                    "lr": optimizer.param_groups[0]["lr"],
                    "weight_decay": wd,
                    "train_loss": train_loss,
                    "train_images_per_s": seen * info.world_size / max(1e-9, epoch_time),
                    "val_top1": score.top1,
                    "val_top5": score.top5,
                    "val_loss": score.loss,
                    "model_top1": results[-1].top1 if ema is not None else None,
                    "epoch_time_s": epoch_time,
                }
                logger.epoch_row(row)
                logger.scalars(
                    global_step, **{"val/top1": score.top1, "val/top5": score.top5, "val/loss": score.loss}
                )
                print(
                    f"epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f}, val top-1 {score.top1:.2f} % "
                    f"top-5 {score.top5:.2f} %"
                    + (f" (EMA; raw model {results[-1].top1:.2f} %)" if ema is not None else "")
                    + f", {row['train_images_per_s']:.0f} img/s, {epoch_time:.1f} s",
                    flush=True,
                )
            best_top1 = max(best_top1, score.top1)
            save_resume(epoch + 1, 0)
        logger.close()

        # ---- deploy: the best weights, reparameterized, evaluated again in both forms on the same batches
        from mobilebone.checkpoints import load_checkpoint

        best = create_model(cfg.model, num_classes=len(classes)).to(info.device)
        load_checkpoint(best, out / BEST_FILE)
        best.pretrained_cfg = {**best.pretrained_cfg, **pp}  # type: ignore[dict-item,assignment]
        deploy = reparameterize_model(best)
        train_form, deploy_form = evaluate([best, deploy], val_loader, info=info)
        if info.is_main:
            _save_native(deploy, out / DEPLOY_FILE, cfg, classes, {"val_top1": f"{deploy_form.top1:.4f}"})
            print(
                f"best weights ({out / BEST_FILE}): train-time form top-1 {train_form.top1:.2f} % top-5 "
                f"{train_form.top5:.2f} %; reparameterized top-1 {deploy_form.top1:.2f} % top-5 "
                f"{deploy_form.top5:.2f} % (max |logit difference| {deploy_form.max_logit_diff:.2e}) "
                f"→ {out / DEPLOY_FILE}",
                flush=True,
            )
        barrier(info)
        return TrainResult(
            out=out,
            best_top1=best_top1,
            train_form=train_form,
            deploy_form=deploy_form,
            epochs=cfg.epochs,
            wall_s=time.perf_counter() - started,
        )
    finally:
        cleanup(info)
