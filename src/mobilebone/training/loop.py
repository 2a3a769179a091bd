"""The training loop, readable top to bottom: run folder → data → model → optimizer → epochs → deploy check.

Each part is its own unit that any task (``training.task.Task``) shares: the run folder and its lock
(``rundir``), loaders (``data.build_loaders``), the optimization step (``step.TrainStep``), evaluation
(``Task.evaluate``), resume checkpoints (``checkpointing``) and the deploy check (``deploy_check``).
One process or many (torchrun → DDP); rank 0 logs and writes files. Every ``checkpoint_every`` steps and at
each epoch end a resume checkpoint is written; ``resume`` continues from it, mid-epoch included. At the end
the best weights are reloaded, put in deploy form (MobileOne's branches fold into one conv per unit),
scored again on the same images, and the run fails unless both forms agree within ``deploy_tolerance``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mobilebone.training import checkpointing as ckpt
from mobilebone.training.config import TrainConfig, scaled_lr, validate
from mobilebone.training.data import Loaders, build_loaders
from mobilebone.training.deploy_check import deploy_check
from mobilebone.training.distributed import DistInfo, all_gather_tensor, all_reduce_sum, barrier, cleanup
from mobilebone.training.ema import make_ema
from mobilebone.training.errors import RunDirError
from mobilebone.training.logging import RunLogger, progress
from mobilebone.training.optim import build_optimizer, build_scheduler
from mobilebone.training.rundir import RunLock, describe_os_error, open_run_dir, write_config
from mobilebone.training.step import TrainStep
from mobilebone.training.task import Task, WeightsFormat, better

BEST_FILE, LAST_FILE, DEPLOY_FILE = (
    "model_best.safetensors",
    "model_last.safetensors",
    "model_deploy.safetensors",
)


@dataclass
class TrainResult:
    """What a finished run reports; the deploy file holds the reparameterized best weights."""

    out: Path
    metric: str  # the task's primary metric, e.g. "top1"
    best_score: float
    train_form: dict[str, float]  # the best weights' metrics, train-time form
    deploy_form: dict[str, float]  # the same weights in deploy form, on the same images
    epochs: int
    wall_s: float


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


def _default_out(cfg: TrainConfig, info: DistInfo) -> str:
    """``runs/<model>-<date-time>``, picked by rank 0 and shared (ranks could disagree on the clock)."""
    chosen = [f"runs/{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"]
    if info.distributed:
        import torch.distributed as dist

        dist.broadcast_object_list(chosen, src=0)
    return chosen[0]


def resume_target(cfg: TrainConfig, resume: bool | str | Path) -> Path:
    """The run folder ``resume`` names: ``cfg.out`` for True, else the folder (or checkpoint file) given."""
    if resume is True:
        if not cfg.out:
            raise RunDirError("--resume needs the run folder: --out DIR --resume, or --resume DIR")
        return Path(cfg.out).expanduser()
    where = Path(str(resume)).expanduser()
    folder = where.parent if where.is_file() else where
    if cfg.out and Path(cfg.out).expanduser().resolve() != folder.resolve():
        raise RunDirError(
            f"--out {cfg.out} and --resume {resume} name different run folders; a resumed run continues "
            f"in its own folder: pass --resume {folder} alone (or --out {folder} --resume)"
        )
    return folder


def _save_weights(
    task: Task, model: nn.Module, path: Path, cfg: TrainConfig, classes: list[str], extra: dict[str, str]
) -> None:
    """The task's own format (``WeightsFormat``) or the native one, with config and class names."""
    if isinstance(task, WeightsFormat):
        task.save_weights(model, path, cfg, classes, extra)
        return
    from mobilebone.checkpoints import save_native

    metadata = {"classes": json.dumps(classes), "training_config": cfg.to_json(), **extra}
    save_native(model, path, model_name=cfg.model, metadata=metadata)


def _load_weights(task: Task, model: nn.Module, path: Path) -> None:
    if isinstance(task, WeightsFormat):
        task.load_weights(model, path)
        return
    from mobilebone.checkpoints import load_checkpoint

    load_checkpoint(model, path)


def _batches(loader: Iterable[Any], counter: list[str]) -> Iterator[Any]:
    """The task's batches from a ``(batch, skipped)`` loader; skipped paths are appended to ``counter``."""
    for batch, skipped in loader:
        counter.extend(skipped)
        if batch is not None:
            yield batch


def _warn_skipped(skipped: list[str], where: str, info: DistInfo) -> None:
    if skipped and info.is_main:
        print(
            f"warning: skipped {len(skipped)} unreadable image(s) in {where} (first: {skipped[0]})",
            flush=True,
        )


@dataclass
class _Run:
    """The state the epoch loop shares between its units."""

    cfg: TrainConfig
    task: Task
    info: DistInfo
    out: Path
    classes: list[str]
    loaders: Loaders
    step: TrainStep
    logger: RunLogger
    start_epoch: int = 0
    skip_steps: int = 0
    best_score: float | None = None
    last_checkpoint: str = "No resume checkpoint had been written yet."

    def save_resume(self, epoch: int, step_in_epoch: int) -> None:
        """Write ``checkpoint_last.pt`` (collective: every rank's RNG state is gathered) — finite weights only."""
        if not self.step.finite():
            raise self.step.stop(self.last_checkpoint)
        rng = {k: all_gather_tensor(v, self.info) for k, v in ckpt.rng_state().items()}
        s = self.step
        if self.info.is_main:
            path = self.out / ckpt.RESUME_FILE
            ckpt.save_state(
                path,
                {
                    "config": self.cfg.to_json(),
                    "model": s.model.state_dict(),
                    "ema": s.ema.state_dict() if s.ema is not None else {},
                    "optimizer": s.optimizer.state_dict(),
                    "scheduler": s.scheduler.state_dict(),
                    "scaler": s.scaler.state_dict(),
                    "rng": rng,
                    "epoch": epoch,
                    "step_in_epoch": step_in_epoch,
                    "global_step": s.global_step,
                    "best_score": self.best_score,
                    "world_size": self.info.world_size,
                },
            )
        self.last_checkpoint = (
            f"The last good checkpoint, {self.out / ckpt.RESUME_FILE} (epoch {epoch}, step {s.global_step}), "
            f"is intact."
        )
        barrier(self.info)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a resume checkpoint: weights, optimizer, schedules, position and RNG."""
        s = self.step
        ckpt.restore_state(
            state,
            {
                "model": s.model,
                "ema": s.ema,
                "optimizer": s.optimizer,
                "scheduler": s.scheduler,
                "scaler": s.scaler,
            },
        )
        self.start_epoch, self.skip_steps = int(state["epoch"]), int(state["step_in_epoch"])
        s.global_step = int(state["global_step"])
        if "best_score" in state:
            self.best_score = None if state["best_score"] is None else float(state["best_score"])
        else:  # checkpoints before the task interface: best_top1, -1 = none yet
            self.best_score = None if float(state["best_top1"]) < 0 else float(state["best_top1"])
        if int(state["world_size"]) == self.info.world_size:
            ckpt.set_rng_state({k: v[self.info.rank] for k, v in state["rng"].items()})
        elif self.skip_steps:
            raise RunDirError(
                f"the checkpoint was written mid-epoch by {state['world_size']} processes; resume with "
                f"the same number (--nproc_per_node), or from an epoch-end checkpoint"
            )

    def train_epoch(self, epoch: int) -> tuple[float, int, float]:
        """Train one epoch (from ``skip_steps`` after a resume); returns mean loss, samples, seconds."""
        cfg, info, s, loaders = self.cfg, self.info, self.step, self.loaders
        skip = self.skip_steps if epoch == self.start_epoch else 0
        loaders.train.dataset.set_epoch(epoch)  # type: ignore[attr-defined]
        loaders.sampler.set_epoch(epoch, skip=skip * cfg.batch_size)
        s.net.train()
        steps = loaders.steps_per_epoch
        bar = progress(steps, initial=skip, desc=f"epoch {epoch + 1}/{cfg.epochs}", enabled=info.is_main)
        loss_sum = torch.zeros((), dtype=torch.float64)
        seen, tick, step_in_epoch = 0, time.perf_counter(), skip
        skipped: list[str] = []
        try:
            for batch in _batches(loaders.train, skipped):
                if step_in_epoch >= steps:
                    break
                loss, n = s(batch)
                step_in_epoch += 1
                loss_sum += loss.double().cpu()
                seen += n
                if info.is_main:
                    bar.update(1)
                if s.global_step % cfg.log_every == 0 or step_in_epoch == steps:
                    if not info.distributed and not s.finite(collective=False):
                        raise s.stop(self.last_checkpoint)
                    if info.is_main:  # loss.item() waits for the device: only every log_every steps
                        rate = seen * info.world_size / max(1e-9, time.perf_counter() - tick)
                        lr = s.optimizer.param_groups[0]["lr"]
                        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.3g}", img_s=f"{rate:.0f}")
                        self.logger.scalars(
                            s.global_step,
                            **{"train/loss": loss.item(), "train/lr": lr, "train/images_per_s": rate},
                        )
                if (
                    cfg.checkpoint_every
                    and s.global_step % cfg.checkpoint_every == 0
                    and step_in_epoch < steps
                ):
                    self.save_resume(epoch, step_in_epoch)
        finally:
            bar.close()
        _warn_skipped(skipped, f"epoch {epoch + 1}'s training images", info)
        totals = all_reduce_sum(
            torch.tensor([float(loss_sum), float(max(1, step_in_epoch - skip))], dtype=torch.float64).to(
                info.device
            ),
            info,
        ).cpu()
        return float(totals[0] / totals[1]), seen, time.perf_counter() - tick

    def evaluate(self, models: list[nn.Module]) -> list[dict[str, float]]:
        """Score ``models`` on the validation set (same batches for all)."""
        skipped: list[str] = []
        results = self.task.evaluate(models, _batches(self.loaders.val, skipped), self.info)
        _warn_skipped(skipped, "the validation images", self.info)
        return results

    def end_epoch(self, epoch: int, train_loss: float, seen: int, seconds: float) -> None:
        """Evaluate, keep the best weights, log the epoch's row, write the epoch-end resume checkpoint."""
        if not self.step.finite():
            raise self.step.stop(self.last_checkpoint)
        s, task, info, metric = self.step, self.task, self.info, self.task.primary_metric
        # Evaluate the EMA weights when there are some (what gets deployed), and the raw model. Each is
        # scored in deploy form: the same function (the deploy check enforces it), several times cheaper
        # than the train-time branches (MobileOne-S0 ~5x on a CPU).
        evaluated = [s.ema.module, s.model] if s.ema is not None else [s.model]
        results = self.evaluate([task.deploy(m) for m in evaluated])
        score = results[0]
        if info.is_main:
            deployable = s.ema.module if s.ema is not None else s.model
            extra = {"epoch": str(epoch + 1), f"val_{metric}": f"{score[metric]:.4f}"}
            if better(task, score[metric], self.best_score):
                _save_weights(task, deployable, self.out / BEST_FILE, self.cfg, self.classes, extra)
            _save_weights(task, deployable, self.out / LAST_FILE, self.cfg, self.classes, extra)
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "step": s.global_step,
                "lr": s.optimizer.param_groups[0]["lr"],
                "weight_decay": s.weight_decay,
                "train_loss": train_loss,
                "train_images_per_s": seen * info.world_size / max(1e-9, seconds),
                **{f"val_{k}": v for k, v in score.items() if k not in ("count", "max_logit_diff")},
                f"model_{metric}": results[-1][metric] if s.ema is not None else None,
                "epoch_time_s": seconds,
            }
            self.logger.epoch_row(row)
            self.logger.scalars(s.global_step, **{f"val/{k}": v for k, v in score.items() if k != "count"})
            shown = ", ".join(
                f"{k} {v:.4g}" for k, v in score.items() if k not in ("count", "max_logit_diff")
            )
            print(
                f"epoch {epoch + 1}/{self.cfg.epochs}: train loss {train_loss:.4f}, val {shown}"
                + (f" (EMA; raw model {metric} {results[-1][metric]:.4g})" if s.ema is not None else "")
                + f", {row['train_images_per_s']:.0f} samples/s, {seconds:.1f} s",
                flush=True,
            )
        if better(task, score[metric], self.best_score):
            self.best_score = score[metric]
        self.save_resume(epoch + 1, 0)


def train(
    cfg: TrainConfig, *, resume: bool | str | Path = False, overwrite: bool = False, task: Task | None = None
) -> TrainResult:
    """Train ``cfg.model`` as ``cfg`` says (classification unless ``task`` is given).

    ``resume`` (True = ``cfg.out``, or a run folder / checkpoint file) continues a run with its saved
    settings; ``overwrite`` lets a new run replace the run files of a non-empty ``cfg.out``.
    """
    from mobilebone.training.distributed import init_distributed

    started = time.perf_counter()
    info = init_distributed()
    lock: RunLock | None = None
    try:
        # ---- run folder: the saved settings when resuming; the lock; config.json
        state: dict[str, Any] | None = None
        if resume:
            where = resume_target(cfg, resume)
            state = ckpt.load_state(where)
            cfg = TrainConfig.from_json(state["config"])  # the run continues with the settings it began with
            cfg.out = str(where)
        validate(cfg)
        if not cfg.out:
            cfg.out = _default_out(cfg, info)
        out = Path(cfg.out).expanduser()
        if info.is_main:
            lock = open_run_dir(out, resuming=state is not None, overwrite=overwrite)
            try:
                write_config(out, cfg.to_json())
            except OSError as err:
                raise RunDirError(f"cannot write {describe_os_error(err, out / 'config.json')}") from None
        barrier(info)
        _seed_everything(cfg.seed + info.rank)
        if task is None:
            from mobilebone.training.classification import ClassificationTask

            task = ClassificationTask(cfg)

        # ---- data: per-sample seeded augmentation, deterministic epoch order, sharded eval
        data = task.build_data(cfg)
        loaders = build_loaders(
            data.train,
            data.val,
            collate=task.collate,
            batch_size=cfg.batch_size,
            workers=cfg.workers,
            seed=cfg.seed,
            rank=info.rank,
            world_size=info.world_size,
            pin_memory=info.device.type == "cuda",
        )

        # ---- model, EMA, DDP
        model = task.build_model(cfg, len(data.classes))
        if data.preprocessing:
            model.pretrained_cfg = {**getattr(model, "pretrained_cfg", {}), **data.preprocessing}  # type: ignore[assignment]
        # channels_last on GPUs only: on CPUs, torch 2.14's oneDNN conv backward in channels_last crashes
        # (segfault or hang) on some x86 machines (an AMD EPYC here: 1x1 stride-2 conv, 3 input channels),
        # though it trained 1.5-1.9x faster on an Intel Xeon (docs/training.md).
        channels_last = cfg.channels_last and info.device.type == "cuda"
        model = model.to(info.device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        amp_dtype = _amp_dtype(cfg, info.device)
        if hasattr(task, "channels_last"):
            task.channels_last = channels_last
        if hasattr(task, "amp_dtype"):
            task.amp_dtype = amp_dtype
        ema = make_ema(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        net: nn.Module = model
        if info.distributed:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[info.local_rank] if info.device.type == "cuda" else None
            )

        # ---- optimizer, schedules, mixed precision
        lr = scaled_lr(cfg, info.world_size)
        optimizer = build_optimizer(model, cfg, lr)
        scheduler = build_scheduler(optimizer, lr=lr, cfg=cfg, steps_per_epoch=loaders.steps_per_epoch)
        step = TrainStep(
            task=task,
            cfg=cfg,
            info=info,
            model=model,
            net=net,
            ema=ema,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=torch.amp.GradScaler(info.device.type, enabled=amp_dtype == torch.float16),
            amp_dtype=amp_dtype,
            total_steps=cfg.epochs * loaders.steps_per_epoch,
        )
        run = _Run(cfg, task, info, out, data.classes, loaders, step, RunLogger(out, enabled=False))
        if state is not None:
            run.restore(state)
        run.logger = RunLogger(
            out,
            enabled=info.is_main,
            purge_step=step.global_step if state is not None else None,
            epochs_done=run.start_epoch if state is not None else None,
        )
        if info.is_main:
            print(
                f"training {cfg.model} ({cfg.recipe} recipe, {task.name}) on {data.description}: "
                f"{len(data.classes)} classes, {len(data.train)} train / {len(data.val)} val samples, "
                f"{cfg.epochs} epochs × {loaders.steps_per_epoch} steps, global batch "
                f"{cfg.batch_size * info.world_size}, peak lr {lr:.4g}, {info.world_size} process(es) on "
                f"{info.device.type}"
                + (
                    f"; resuming at epoch {run.start_epoch + 1}, step {run.skip_steps}"
                    if state is not None
                    else ""
                ),
                flush=True,
            )

        # ---- epochs
        for epoch in range(run.start_epoch, cfg.epochs):
            train_loss, seen, seconds = run.train_epoch(epoch)
            run.end_epoch(epoch, train_loss, seen, seconds)
        run.logger.close()

        # ---- deploy check: the best weights, in both forms, on the same images; must agree
        best = task.build_model(cfg, len(data.classes)).to(info.device)
        _load_weights(task, best, out / BEST_FILE)
        if data.preprocessing:
            best.pretrained_cfg = {**getattr(best, "pretrained_cfg", {}), **data.preprocessing}  # type: ignore[assignment]
        skipped: list[str] = []
        if hasattr(task, "amp_dtype"):
            task.amp_dtype = None  # both forms in float32: the comparison is about the weights, not rounding
        check = deploy_check(task, best, _batches(loaders.val, skipped), info, tolerance=cfg.deploy_tolerance)
        metric = task.primary_metric
        if info.is_main:
            _save_weights(
                task,
                check.deploy_model,
                out / DEPLOY_FILE,
                cfg,
                data.classes,
                {f"val_{metric}": f"{check.deploy_form[metric]:.4f}"},
            )
            print(
                f"best weights ({out / BEST_FILE}): train-time form {metric} {check.train_form[metric]:.4g}; "
                f"deploy form {metric} {check.deploy_form[metric]:.4g} (difference {check.difference:.3g}, "
                f"tolerance {cfg.deploy_tolerance:g}; max |output difference| "
                f"{check.deploy_form.get('max_logit_diff', 0.0):.2e}) → {out / DEPLOY_FILE}",
                flush=True,
            )
        barrier(info)
        return TrainResult(
            out=out,
            metric=metric,
            best_score=float(run.best_score if run.best_score is not None else float("nan")),
            train_form=check.train_form,
            deploy_form=check.deploy_form,
            epochs=cfg.epochs,
            wall_s=time.perf_counter() - started,
        )
    finally:
        if lock is not None:
            lock.release()
        cleanup(info)
