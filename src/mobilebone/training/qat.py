"""Quantization-aware fine-tuning of trained classification weights, ending in a verified int8 program.

PyTorch's maintained path (torchao pt2e, as ExecuTorch's XNNPACK quantization guide uses it): the deploy
(reparameterized) model is captured with ``torch.export``, ``prepare_qat_pt2e`` with ExecuTorch's
``XNNPACKQuantizer`` (symmetric int8, per-channel weights, ``is_qat=True``) inserts fake-quantize modules
on weights and activations, the captured model is fine-tuned for a few epochs on the weights' own data
with the run's optimizer and schedule (``training.optim``) at a small learning rate, then
``convert_pt2e`` makes the int8 graph, which is lowered to an ExecuTorch ``.pte`` with every op in the
XNNPACK delegate (``backends.executorch``).

The program is verified as ``mobilebone deploy`` verifies a candidate: top-1 agreement of the int8
program, run by the ExecuTorch runtime, with the float32 deploy model on the validation split (never
trained on). The same comparison is made for post-training quantization of the same model (pt2e with the
same quantizer, calibrated on training images), so the report says what QAT bought.

Fine-tuning the fused graph (no BatchNorm left to fold) keeps this one code path for every family: the
quantizer sees exactly the convolutions the runtime will run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mobilebone.training.config import TrainConfig

# Fine-tuning lr as a fraction of the run's peak lr: the weights are already trained; QAT only adapts them
# to the rounding (torchao's QAT guide fine-tunes at ~1 % of the original lr).
LR_FRACTION = 0.01


@dataclass
class QATReport:
    """What a quantization-aware fine-tune did and how its int8 program compares with float32 and PTQ."""

    weights: str
    model: str
    input_size: int
    epochs: int
    steps: int
    lr: float
    fake_quant_modules: int
    held_out: str
    num_held_out: int
    top1_agreement_qat: float = math.nan  # int8 QAT program vs float32 deploy model, top-1
    top1_agreement_ptq: float = math.nan  # int8 PTQ program (same quantizer) vs float32, top-1
    accuracy: dict[str, float] = field(default_factory=dict)  # top-1 vs labels: fp32, ptq, qat
    train_loss: list[float] = field(default_factory=list)  # mean loss per epoch
    artifact: str = ""
    seconds: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable summary."""
        acc = ", ".join(f"{k} {100 * v:.1f} %" for k, v in self.accuracy.items())
        return [
            f"QAT {self.model} from {self.weights}: {self.epochs} epoch(s), {self.steps} steps, lr {self.lr:.2e}, "
            f"{self.fake_quant_modules} fake-quantize modules",
            f"top-1 agreement with float32 on {self.num_held_out} held-out images ({self.held_out}): "
            f"QAT int8 {100 * self.top1_agreement_qat:.1f} %, PTQ int8 {100 * self.top1_agreement_ptq:.1f} %",
            f"top-1 accuracy: {acc}",
            f"int8 ExecuTorch program: {self.artifact}",
        ]


def count_fake_quant(model: nn.Module) -> int:
    """Fake-quantize modules in a pt2e-prepared model (0: nothing would be learned about rounding)."""
    from torchao.quantization.pt2e import FakeQuantizeBase

    return sum(isinstance(m, FakeQuantizeBase) for m in model.modules())


def _quantizer() -> Any:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=True))


def prepare_qat(deploy: nn.Module, example: Tensor) -> nn.Module:
    """The deploy model captured by ``torch.export`` with fake-quantize modules inserted (train mode)."""
    from torchao.quantization.pt2e import move_exported_model_to_train
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    # Batch dimension dynamic (an example of 2 keeps export from specializing it to 1): training batches.
    batch = example[:1].expand(2, *example.shape[1:]).contiguous()
    captured = torch.export.export(deploy, (batch,), dynamic_shapes=({0: torch.export.Dim.AUTO},)).module()
    prepared = prepare_qat_pt2e(captured, _quantizer())  # type: ignore[arg-type]
    move_exported_model_to_train(prepared)
    prepared.requires_grad_(True)  # the deploy copy was frozen for inference
    return prepared


def lower_int8(prepared: nn.Module, example: Tensor, path: Path, threads: int) -> Any:
    """``convert_pt2e`` and lower to an ExecuTorch XNNPACK ``.pte`` at ``path``; its ``Engine``."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from mobilebone.backends.executorch import lower_quantized

    move_exported_model_to_eval(prepared)
    return lower_quantized(convert_pt2e(prepared), example, path, threads, name="executorch-xnnpack-qat")  # type: ignore[arg-type]


def _top1(logits: Tensor, labels: Tensor) -> float:
    return float((logits.argmax(1) == labels).double().mean())


def finetune(
    weights: str,
    out: str | Path,
    *,
    epochs: int = 1,
    lr: float | None = None,
    max_steps: int | None = None,
    num_held_out: int | None = None,
    num_calibration: int = 32,
    threads: int | None = None,
) -> QATReport:
    """Fine-tune ``weights`` (written by ``mobilebone train``) with fake quantization for ``epochs`` on their
    own training data, write ``out/model_qat_int8.pte`` and ``out/qat_report.json``, and return the report.

    ``lr`` defaults to ``LR_FRACTION`` of the run's peak lr; ``max_steps`` caps the steps (tests);
    ``num_held_out`` caps the validation images used for the agreement (default: the whole split).
    """
    from mobilebone.analysis.environment import capture_environment
    from mobilebone.backends.engine import logits_of
    from mobilebone.backends.executorch import build_int8
    from mobilebone.checkpoints.build import model_for_checkpoint
    from mobilebone.checkpoints.load import read
    from mobilebone.export.prepare import prepare_for_export
    from mobilebone.training.classification import ClassificationTask
    from mobilebone.training.config import scaled_lr
    from mobilebone.training.optim import build_optimizer, build_scheduler

    started = time.perf_counter()
    if epochs < 1:
        raise ValueError(f"--epochs must be >= 1 for QAT, got {epochs}")
    ckpt = read(weights)
    raw = ckpt.metadata.get("training_config")
    if not raw:
        raise ValueError(
            f"{weights} records no training config; QAT fine-tunes weights written by `mobilebone train`"
        )
    cfg = TrainConfig.from_json(raw)
    model, name = model_for_checkpoint(ckpt, cfg.model, deploy=True)
    deploy = prepare_for_export(model)
    threads = threads or torch.get_num_threads()
    task = ClassificationTask(cfg)
    data = task.build_data(cfg)
    torch.manual_seed(cfg.seed)
    train_loader = torch.utils.data.DataLoader(
        data.train, batch_size=cfg.batch_size, shuffle=True, drop_last=True
    )
    held_n = len(data.val) if num_held_out is None else min(num_held_out, len(data.val))
    held = [data.val[i] for i in range(held_n)]
    images = torch.stack([im for im, _ in held])
    labels = torch.tensor([int(label) for _, label in held])
    example = images[:1].contiguous()
    calibration = torch.stack([data.train[i][0] for i in range(num_calibration)])

    prepared = prepare_qat(deploy, example)
    peak = lr if lr is not None else LR_FRACTION * scaled_lr(cfg, 1)
    run_cfg = TrainConfig(**{**asdict(cfg), "epochs": epochs, "warmup_epochs": 0.0})
    optimizer = build_optimizer(prepared, run_cfg, peak)
    steps_per_epoch = len(train_loader) if max_steps is None else min(len(train_loader), max_steps)
    scheduler = build_scheduler(optimizer, lr=peak, cfg=run_cfg, steps_per_epoch=steps_per_epoch)
    report = QATReport(
        weights=str(weights),
        model=name,
        input_size=cfg.input_size,
        epochs=epochs,
        steps=0,
        lr=peak,
        fake_quant_modules=count_fake_quant(prepared),
        held_out=f"{cfg.data or 'embedded set'} val split, first {held_n} images",
        num_held_out=held_n,
    )
    for epoch in range(epochs):
        data.train.set_epoch(epoch)
        losses = []
        for step, batch in enumerate(train_loader):
            if step >= steps_per_epoch:
                break
            loss, _ = task.loss(prepared, batch, torch.device("cpu"))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            report.steps += 1
        report.train_loss.append(sum(losses) / max(1, len(losses)))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    engine = lower_int8(prepared, example, out / "model_qat_int8.pte", threads)
    with torch.inference_mode():
        reference = torch.cat([deploy(images[i : i + 1]) for i in range(len(images))])
    qat_logits = logits_of(engine, images)
    with torch.no_grad():
        ptq = build_int8(deploy, example, calibration, threads, out / "ptq")
    ptq_logits = logits_of(ptq, images)
    report.top1_agreement_qat = _top1(qat_logits, reference.argmax(1))
    report.top1_agreement_ptq = _top1(ptq_logits, reference.argmax(1))
    report.accuracy = {
        "fp32": _top1(reference, labels),
        "ptq_int8": _top1(ptq_logits, labels),
        "qat_int8": _top1(qat_logits, labels),
    }
    report.artifact = str(out / "model_qat_int8.pte")
    report.seconds = time.perf_counter() - started
    report.environment = capture_environment(
        threads, runtime="executorch-xnnpack", precision="int8 (pt2e QAT)"
    )
    (out / "qat_report.json").write_text(json.dumps(asdict(report), indent=1, default=str), encoding="utf-8")
    return report
