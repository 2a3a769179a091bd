"""Training configuration: one dataclass, the papers' recipes as presets, and the resolution of overrides.

Precedence: the recipe's values, then anything given explicitly (CLI flags or keyword overrides). The
resolved config is saved with the run (``config.json``) and inside every resume checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

RECIPES = ("mobileone", "mobilenetv4", "embedded")
EMBEDDED_MODEL = "mobileone_s0"


@dataclass
class TrainConfig:
    """Every setting of a training run; ``lr`` is the peak learning rate actually used (after scaling)."""

    model: str = EMBEDDED_MODEL
    data: str | None = None  # ImageFolder root with train/ and val/; None = the embedded set
    out: str = ""  # run folder; "" = runs/<model>-<date-time> (chosen by rank 0)
    recipe: str = "embedded"
    epochs: int = 300
    batch_size: int = 256  # per process; the global batch is batch_size × world size
    optimizer: str = "sgd"  # "sgd" (momentum) or "adamw"
    lr: float | None = None  # None: lr_base × scaling(global batch / lr_base_size)
    lr_base: float = 0.1
    lr_base_size: int = 256
    lr_scaling: str = "linear"  # "linear" (Goyal et al.) or "sqrt" (timm's rule for Adam-family)
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4
    weight_decay_end: float | None = None  # cosine-annealed to this value; None = constant
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    label_smoothing: float = 0.1
    ema_decay: float = 0.0  # 0 disables the EMA of the weights
    augment: str = "basic"  # basic (random-resized crop + flip), autoaugment, randaugment
    min_crop: float = 0.08  # smallest random-resized-crop area fraction
    input_size: int = 224
    crop_pct: float = 0.875  # eval resize = input_size / crop_pct, then center crop
    interpolation: str = "bilinear"
    drop_path: float = 0.0
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    workers: int = 4
    seed: int = 0
    checkpoint_every: int = 200  # steps between mid-epoch resume checkpoints; 0 = epoch ends only
    amp: str = "auto"  # auto (bf16 on GPU if supported else fp16; none on CPU), bf16, fp16, none
    channels_last: bool = True  # GPU only: NHWC activations and weights, faster convolutions
    log_every: int = 10  # steps between TensorBoard points
    # The embedded set (used when data is None): sizes, classes, and the seed its images come from.
    embedded_train: int = 4000
    embedded_val: int = 1000
    embedded_classes: int = 10
    data_seed: int = 0
    notes: dict[str, str] = field(default_factory=dict)  # where the recipe's numbers come from

    def to_json(self) -> str:
        """The config as indented JSON (what ``config.json`` holds)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Rebuild from ``to_json`` output (unknown keys are an error: they mean another version)."""
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"saved config has unknown keys {unknown}; it was written by another version")
        data["betas"] = tuple(data.get("betas", (0.9, 0.999)))
        return cls(**data)


def scaled_lr(cfg: TrainConfig, world_size: int) -> float:
    """The peak learning rate: ``cfg.lr`` if given, else ``lr_base`` scaled to the global batch."""
    if cfg.lr is not None:
        return cfg.lr
    ratio = cfg.batch_size * world_size / cfg.lr_base_size
    return cfg.lr_base * (math.sqrt(ratio) if cfg.lr_scaling == "sqrt" else ratio)


def mobileone_recipe(model: str) -> dict[str, Any]:
    """MobileOne's ImageNet recipe (paper §4 as summarised in REFERENCE §1.5)."""
    variant = model.rsplit("_", 1)[-1]
    return {
        "epochs": 300,
        "batch_size": 256,
        "optimizer": "sgd",
        "momentum": 0.9,
        "lr_base": 0.1,
        "lr_base_size": 256,
        "lr_scaling": "linear",
        "weight_decay": 1e-4,
        "weight_decay_end": 1e-5,  # cosine-annealed, like the learning rate
        "warmup_epochs": 0.0,  # none stated; use --warmup-epochs for large global batches
        "label_smoothing": 0.1,
        "ema_decay": 0.9995,
        "augment": "autoaugment" if variant in ("s2", "s3", "s4") else "basic",
        "min_crop": 0.08,
        "notes": {
            "source": "MobileOne paper (arXiv 2206.04040) §4 via REFERENCE.md §1.5: SGD momentum 0.9, lr 0.1 "
            "per 256 images cosine, 300 epochs, label smoothing 0.1, weight decay 1e-4 → 1e-5 cosine, "
            "EMA 0.9995, AutoAugment for S2–S4 only",
        },
    }


def mobilenetv4_recipe(model: str) -> dict[str, Any]:
    """A timm-style MobileNetV4 recipe (AdamW, cosine with warmup, RandAugment, EMA); see docs/training.md."""
    small = "conv_small" in model
    return {
        "epochs": 500,
        "batch_size": 256,
        "optimizer": "adamw",
        "lr_base": 0.003,
        "lr_base_size": 4096,
        "lr_scaling": "sqrt",  # timm scales Adam-family learning rates by sqrt(global batch / lr_base_size)
        "betas": (0.6, 0.999) if small else (0.9, 0.999),  # beta1 0.6: the MNv4 paper's small-model setting
        "weight_decay": 0.05,
        "weight_decay_end": None,
        "warmup_epochs": 5.0,
        "label_smoothing": 0.1,
        "ema_decay": 0.9998,
        "augment": "randaugment",
        "min_crop": 0.08,
        "drop_path": 0.0 if small else 0.1,
        "grad_clip": 5.0,
        "notes": {
            "source": "modelled on timm's published MobileNetV4 train configs (R. Wightman's MNv4 hparams "
            "gist; 'MobileNet Baselines' blog): AdamW, sqrt-scaled lr_base, cosine + warmup, label smoothing "
            "0.1, RandAugment, EMA; representative values, exact numbers differ per checkpoint",
        },
    }


def embedded_recipe(model: str) -> dict[str, Any]:
    """Minutes on 2 CPU cores: the embedded shapes set at 48 px, a short AdamW cosine (measured in docs).

    Per 64 images, MobileOne takes a high lr (0.005 over 10 epochs reached only 79 %); MobileNetV4
    diverges at that lr (27 % for Conv-S) and trains well at 0.004 with gradient clipping (98.8 %).
    """
    from mobilebone.registry import get_entry

    mnv4 = get_entry(model).recipe == "mobilenetv4"
    return {
        "epochs": 8,
        "batch_size": 64,
        "optimizer": "adamw",
        "lr_base": 0.004 if mnv4 else 0.02,
        "lr_base_size": 64,
        "lr_scaling": "linear",
        "weight_decay": 0.05,
        "weight_decay_end": None,
        "warmup_epochs": 1.0,
        "label_smoothing": 0.1,
        "ema_decay": 0.995,  # ~200-step horizon: 500 steps in all, a slower EMA lags the last epochs
        "augment": "basic",
        "min_crop": 0.6,  # shapes must stay mostly in view for the label to hold
        "input_size": 48,  # as fast as 32 px per image on CPU here (overheads dominate), and easier to learn
        "crop_pct": 1.0,
        "workers": 0,
        "grad_clip": 5.0 if mnv4 else 0.0,
        "checkpoint_every": 100,
        "notes": {"source": "mobilebone's embedded demo recipe (not from a paper)"},
    }


def recipe_defaults(recipe: str, model: str) -> dict[str, Any]:
    """The values a recipe sets for ``model`` (a subset of ``TrainConfig``'s fields)."""
    if recipe == "mobileone":
        return mobileone_recipe(model)
    if recipe == "mobilenetv4":
        return mobilenetv4_recipe(model)
    if recipe == "embedded":
        return embedded_recipe(model)
    raise ValueError(f"unknown recipe {recipe!r}; use one of {', '.join(RECIPES)}")


def default_recipe(model: str, data: str | None) -> str:
    """``embedded`` without data, else the recipe of the model's family."""
    if data is None:
        return "embedded"
    from mobilebone.registry import get_entry

    return "mobilenetv4" if get_entry(model).family == "mobilenetv4" else "mobileone"


def resolve_config(model: str | None = None, data: str | None = None, **overrides: Any) -> TrainConfig:
    """Build the run's config: recipe presets, the model's preprocessing, then explicit overrides."""
    from mobilebone.registry import get_entry

    model = model or EMBEDDED_MODEL
    entry = get_entry(model)  # unknown names raise with close matches
    recipe = overrides.pop("recipe", None) or default_recipe(model, data)
    values: dict[str, Any] = {
        "input_size": int(entry.default_cfg["input_size"][-1]),
        "crop_pct": float(entry.default_cfg["crop_pct"]),
        "interpolation": str(entry.default_cfg["interpolation"]),
    }
    values.update(recipe_defaults(recipe, model))
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}")
    cfg = TrainConfig(model=entry.name, data=data, recipe=recipe, **values)
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Raise a one-line ``ValueError`` for a setting that cannot work."""
    checks = [
        (cfg.epochs >= 1, f"--epochs must be >= 1, got {cfg.epochs}"),
        (cfg.batch_size >= 1, f"--batch-size must be >= 1, got {cfg.batch_size}"),
        (cfg.lr is None or cfg.lr > 0, f"--lr must be > 0, got {cfg.lr}"),
        (cfg.weight_decay >= 0, f"--weight-decay must be >= 0, got {cfg.weight_decay}"),
        (cfg.warmup_epochs >= 0, f"--warmup-epochs must be >= 0, got {cfg.warmup_epochs}"),
        (0 <= cfg.label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}"),
        (0 <= cfg.ema_decay < 1, f"--ema-decay must be in [0, 1) (0 = off), got {cfg.ema_decay}"),
        (cfg.input_size >= 32, f"--input-size must be >= 32, got {cfg.input_size}"),
        (0 < cfg.min_crop <= 1, f"--min-crop must be in (0, 1], got {cfg.min_crop}"),
        (0 < cfg.crop_pct <= 1, f"crop_pct must be in (0, 1], got {cfg.crop_pct}"),
        (cfg.workers >= 0, f"--workers must be >= 0, got {cfg.workers}"),
        (cfg.checkpoint_every >= 0, f"--checkpoint-every must be >= 0, got {cfg.checkpoint_every}"),
        (cfg.optimizer in ("sgd", "adamw"), f"--optimizer must be sgd or adamw, got {cfg.optimizer!r}"),
        (cfg.lr_scaling in ("linear", "sqrt"), f"lr_scaling must be linear or sqrt, got {cfg.lr_scaling!r}"),
        (cfg.amp in ("auto", "bf16", "fp16", "none"), f"--amp must be auto/bf16/fp16/none, got {cfg.amp!r}"),
        (
            cfg.augment in ("basic", "autoaugment", "randaugment"),
            f"--augment must be basic, autoaugment or randaugment, got {cfg.augment!r}",
        ),
        (cfg.embedded_train >= 1 and cfg.embedded_val >= 1, "the embedded splits need at least 1 image each"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
