"""Training configuration: one dataclass, the papers' recipes as presets, and the resolution of overrides.

Precedence: the recipe's values, then anything given explicitly (CLI flags or keyword overrides). The
resolved config is saved with the run (``config.json``) and inside every resume checkpoint. Every field
carries its help text in ``metadata["help"]``; the ``train`` command line is generated from these fields
(``mobilebone.cli.train``), so a setting cannot exist without its flag. Enumerated settings are ``Literal``
types: their values become the flag's ``choices``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mobilebone.limits import MAX_INPUT_SIZE, MIN_INPUT_SIZE

EMBEDDED_MODEL = "mobileone_s0"

Optimizer = Literal["sgd", "adamw"]
LrScaling = Literal["linear", "sqrt"]
Amp = Literal["auto", "bf16", "fp16", "none"]
Augment = Literal["basic", "autoaugment", "randaugment"]
Interpolation = Literal["bilinear", "bicubic", "nearest"]
# "head": a detection / segmentation head's own recipe (``mobilebone.tasks.training.recipes``).
RecipeName = Literal["mobileone", "mobilenetv4", "embedded", "head"]
TaskName = Literal["classification", "detection", "segmentation"]


def _help(text: str, **extra: Any) -> dict[str, Any]:
    """A field's metadata: its help text (the ``train`` flag's help) and any flag options."""
    return {"help": text, **extra}


@dataclass
class TrainConfig:
    """Every setting of a training run; ``lr`` is the peak learning rate actually used (after scaling)."""

    task: TaskName = field(
        default="classification",
        metadata=_help("what to train: a classifier, or a detector / segmenter such as ssdlite_mobileone_s0"),
    )
    model: str = field(
        default=EMBEDDED_MODEL,
        metadata=_help(
            "architecture (a task model name such as ssdlite_mobileone_s0 for --task)", metavar="NAME"
        ),
    )
    data: str | None = field(
        default=None,
        metadata=_help(
            "dataset root: an ImageFolder with train/ and val/, or for --task a --data-layout root "
            "(default: the embedded set)",
            metavar="DIR",
        ),
    )
    data_layout: str | None = field(
        default=None,
        metadata=_help(
            "--task only: the layout of --data (the names: mobilebone.tasks.data.layouts; default: coco for "
            "detection, voc for segmentation)",
            metavar="NAME",
        ),
    )
    backbone_weights: str | None = field(
        default=None,
        metadata=_help(
            "start from these weights (fine-tuning): a weight tag or a file, e.g. a `mobilebone train` "
            "result; a classifier starts from all of it (a fresh classifier when the class counts differ), "
            "a --task model's backbone from its classification weights",
            metavar="SRC",
        ),
    )
    aux_loss: bool = field(
        default=False,
        metadata=_help("--task segmentation, deeplabv3: auxiliary FCN head and loss (weight 0.5)"),
    )
    out: str = field(
        default="", metadata=_help("run folder (default: runs/<model>-<date-time>)", metavar="DIR")
    )
    recipe: RecipeName = field(
        default="embedded", metadata=_help("preset of every value below (default: from the model and --data)")
    )
    epochs: int = field(default=300, metadata=_help("number of epochs"))
    batch_size: int = field(
        default=256, metadata=_help("images per process and step (global batch = this × processes)")
    )
    optimizer: Optimizer = field(
        default="sgd", metadata=_help("SGD with momentum, or AdamW (decoupled weight decay)")
    )
    lr: float | None = field(
        default=None,
        metadata=_help("peak learning rate, used as is (default: --lr-base scaled to the global batch)"),
    )
    lr_base: float = field(
        default=0.1, metadata=_help("learning rate per --lr-base-size images, scaled by --lr-scaling")
    )
    lr_base_size: int = field(default=256, metadata=_help("global batch that --lr-base refers to"))
    lr_scaling: LrScaling = field(
        default="linear",
        metadata=_help(
            "how --lr-base scales with the global batch: linear (Goyal et al. 2017) or sqrt (timm, Adam)"
        ),
    )
    momentum: float = field(default=0.9, metadata=_help("SGD momentum"))
    betas: tuple[float, float] = field(
        default=(0.9, 0.999), metadata=_help("AdamW betas (two numbers)", metavar=("BETA1", "BETA2"))
    )
    weight_decay: float = field(
        default=1e-4, metadata=_help("weight decay (conv/linear weights only; never norms and biases)")
    )
    weight_decay_end: float | None = field(
        default=None,
        metadata=_help("anneal the weight decay to this value with a cosine ('none' = constant)"),
    )
    warmup_epochs: float = field(
        default=0.0, metadata=_help("linear learning-rate warm-up, in epochs (fractions allowed)")
    )
    min_lr: float = field(default=0.0, metadata=_help("learning rate at the end of the cosine"))
    label_smoothing: float = field(default=0.1, metadata=_help("label smoothing of the cross-entropy"))
    ema_decay: float = field(default=0.0, metadata=_help("EMA decay of the weights (0 = no EMA)"))
    augment: Augment = field(
        default="basic", metadata=_help("random-resized crop + flip, plus AutoAugment or RandAugment")
    )
    min_crop: float = field(default=0.08, metadata=_help("smallest random-resized-crop area fraction"))
    input_size: int = field(default=224, metadata=_help("training and eval resolution (pixels)"))
    crop_pct: float = field(
        default=0.875, metadata=_help("eval center-crop fraction (resize to input-size / crop-pct first)")
    )
    interpolation: Interpolation = field(
        default="bilinear", metadata=_help("resize interpolation (training crops and eval)")
    )
    drop_path: float = field(default=0.0, metadata=_help("stochastic depth rate (models that support it)"))
    grad_clip: float = field(
        default=0.0, metadata=_help("clip the global gradient norm to this value (0 = off)")
    )
    workers: int = field(default=4, metadata=_help("data-loading worker processes per training process"))
    seed: int = field(default=0, metadata=_help("seed of initialization, sample order and augmentation"))
    checkpoint_every: int = field(
        default=200,
        metadata=_help("steps between resume checkpoints (plus one at every epoch end; 0 = epoch ends only)"),
    )
    amp: Amp = field(
        default="auto",
        metadata=_help("mixed precision: auto (bf16/fp16 on GPU, none on CPU), bf16, fp16, none"),
    )
    channels_last: bool = field(
        default=True, metadata=_help("GPU: NHWC activations and weights, faster convolutions")
    )
    log_every: int = field(
        default=10, metadata=_help("steps between TensorBoard points and progress-bar updates")
    )
    deploy_tolerance: float = field(
        default=0.5,
        metadata=_help(
            "largest allowed difference (points of the primary metric, e.g. top-1 %) between the deploy "
            "(reparameterized) and the train-time form of the best weights; beyond it the run fails"
        ),
    )
    skip_bad_images: bool = field(
        default=False,
        metadata=_help("skip unreadable images with a counted warning (default: stop, naming the file)"),
    )
    # The embedded set (used when data is None): sizes, classes, and the seed its images come from.
    embedded_train: int = field(default=4000, metadata=_help("embedded set: training images"))
    embedded_val: int = field(default=1000, metadata=_help("embedded set: validation images"))
    embedded_classes: int = field(default=10, metadata=_help("embedded set: classes (10-14)"))
    data_seed: int = field(default=0, metadata=_help("embedded set: the seed its images are drawn from"))
    # Provenance of the recipe's numbers, saved with the run; not a setting, so it has no flag.
    notes: dict[str, str] = field(
        default_factory=dict, metadata=_help("where the recipe's numbers come from", flag=False)
    )

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


# MobileOne trains S2–S4 with AutoAugment and S0/S1 without (MobileOne paper, arXiv 2206.04040, §4).
_AUTOAUGMENT_MODELS = frozenset({"mobileone_s2", "mobileone_s3", "mobileone_s4"})
# Small MobileNetV4s: beta1 0.6 and no stochastic depth (MobileNetV4 paper, arXiv 2404.10518, appendix).
_SMALL_MNV4_MODELS = frozenset({"mobilenetv4_conv_small"})


def mobileone_recipe(model: str) -> dict[str, Any]:
    """MobileOne's ImageNet recipe (MobileOne paper, arXiv 2206.04040, §4 and its training details)."""
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
        "augment": "autoaugment" if model in _AUTOAUGMENT_MODELS else "basic",
        "min_crop": 0.08,
        "notes": {
            "source": "MobileOne paper (arXiv 2206.04040) §4: SGD momentum 0.9, lr 0.1 per 256 images cosine, "
            "300 epochs, label smoothing 0.1, weight decay 1e-4 → 1e-5 cosine, EMA 0.9995, AutoAugment for "
            "S2–S4 only",
        },
    }


def mobilenetv4_recipe(model: str) -> dict[str, Any]:
    """A timm-style MobileNetV4 recipe (AdamW, cosine with warmup, RandAugment, EMA); see docs/training.md."""
    small = model in _SMALL_MNV4_MODELS
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
    mnv4 = model_recipe(model) == "mobilenetv4"
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


# Recipe name → the values it sets for a model (a subset of TrainConfig's fields).
RECIPE_TABLE: dict[str, Callable[[str], dict[str, Any]]] = {
    "mobileone": mobileone_recipe,
    "mobilenetv4": mobilenetv4_recipe,
    "embedded": embedded_recipe,
}
RECIPES = tuple(RECIPE_TABLE)


def model_recipe(model: str) -> str:
    """The ImageNet recipe a model trains with by default: its registry entry's ``recipe``."""
    from mobilebone.registry import get_entry

    return get_entry(model).recipe


def recipe_defaults(recipe: str, model: str) -> dict[str, Any]:
    """The values a recipe sets for ``model`` (a subset of ``TrainConfig``'s fields)."""
    if recipe == "head":
        raise ValueError("--recipe head is the recipe of a detection / segmentation head: pass --task")
    if recipe not in RECIPE_TABLE:
        raise ValueError(f"unknown recipe {recipe!r}; use one of {', '.join(RECIPES)}")
    return RECIPE_TABLE[recipe](model)


def default_recipe(model: str, data: str | None) -> str:
    """``embedded`` without data, else the model's own recipe."""
    return "embedded" if data is None else model_recipe(model)


def resolve_config(model: str | None = None, data: str | None = None, **overrides: Any) -> TrainConfig:
    """Build the run's config: recipe presets, the model's preprocessing, then explicit overrides."""
    from mobilebone.registry import get_entry

    model = model or EMBEDDED_MODEL
    entry = get_entry(model)  # unknown names raise with close matches
    recipe: Any = overrides.pop("recipe", None) or default_recipe(model, data)
    values: dict[str, Any] = {
        "input_size": int(entry.default_cfg["input_size"][-1]),
        "crop_pct": float(entry.default_cfg["crop_pct"]),
        "interpolation": str(entry.default_cfg["interpolation"]),
    }
    values.update(recipe_defaults(recipe, entry.name))
    # None means "not given", except for the settings whose None is a value of its own (off / derived).
    values.update({k: v for k, v in overrides.items() if v is not None or k in NONE_IS_A_VALUE})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}")
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    cfg = TrainConfig(model=entry.name, data=data, recipe=recipe, **values)
    validate(cfg)
    return cfg


# Settings whose None is a value of its own (derived lr, constant weight decay), not "not given".
NONE_IS_A_VALUE = frozenset({"lr", "weight_decay_end"})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _finite(cfg: TrainConfig) -> list[str]:
    """The flags whose value is a non-finite number (NaN or ±inf)."""
    bad = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        numbers = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            bad.append(f"{_flag(f.name)} must be a finite number, got {value}")
    return bad


def validate(cfg: TrainConfig) -> None:
    """Raise a one-line ``ValueError`` naming the flag of the first setting that cannot work."""
    from typing import get_args, get_type_hints

    problems = _finite(cfg)
    if problems:
        raise ValueError(problems[0])
    hints = get_type_hints(TrainConfig)
    for f in dataclasses.fields(cfg):
        choices = get_args(hints[f.name]) if getattr(hints[f.name], "__origin__", None) is Literal else ()
        if choices and getattr(cfg, f.name) not in choices:
            raise ValueError(
                f"{_flag(f.name)} must be one of {', '.join(choices)}, got {getattr(cfg, f.name)!r}"
            )
    wd_end = cfg.weight_decay_end
    checks = [
        (cfg.epochs >= 1, f"--epochs must be >= 1, got {cfg.epochs}"),
        (cfg.batch_size >= 1, f"--batch-size must be >= 1, got {cfg.batch_size}"),
        (cfg.lr is None or cfg.lr > 0, f"--lr must be > 0, got {cfg.lr}"),
        (cfg.lr_base > 0, f"--lr-base must be > 0, got {cfg.lr_base}"),
        (cfg.lr_base_size >= 1, f"--lr-base-size must be >= 1, got {cfg.lr_base_size}"),
        (0 <= cfg.momentum < 1, f"--momentum must be in [0, 1), got {cfg.momentum}"),
        (all(0 <= b < 1 for b in cfg.betas), f"--betas must both be in [0, 1), got {cfg.betas}"),
        (cfg.weight_decay >= 0, f"--weight-decay must be >= 0, got {cfg.weight_decay}"),
        (wd_end is None or wd_end >= 0, f"--weight-decay-end must be >= 0 (or none), got {wd_end}"),
        (cfg.warmup_epochs >= 0, f"--warmup-epochs must be >= 0, got {cfg.warmup_epochs}"),
        (cfg.min_lr >= 0, f"--min-lr must be >= 0, got {cfg.min_lr}"),
        (0 <= cfg.label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}"),
        (0 <= cfg.ema_decay < 1, f"--ema-decay must be in [0, 1) (0 = off), got {cfg.ema_decay}"),
        (
            MIN_INPUT_SIZE <= cfg.input_size <= MAX_INPUT_SIZE,
            f"--input-size must be in [{MIN_INPUT_SIZE}, {MAX_INPUT_SIZE}], got {cfg.input_size}",
        ),
        (0 < cfg.min_crop <= 1, f"--min-crop must be in (0, 1], got {cfg.min_crop}"),
        (0 < cfg.crop_pct <= 1, f"--crop-pct must be in (0, 1], got {cfg.crop_pct}"),
        (0 <= cfg.drop_path < 1, f"--drop-path must be in [0, 1), got {cfg.drop_path}"),
        (cfg.grad_clip >= 0, f"--grad-clip must be > 0, or 0 to turn clipping off; got {cfg.grad_clip}"),
        (cfg.workers >= 0, f"--workers must be >= 0, got {cfg.workers}"),
        (cfg.seed >= 0, f"--seed must be >= 0, got {cfg.seed}"),
        (cfg.checkpoint_every >= 0, f"--checkpoint-every must be >= 0, got {cfg.checkpoint_every}"),
        (cfg.log_every >= 1, f"--log-every must be >= 1, got {cfg.log_every}"),
        (cfg.deploy_tolerance >= 0, f"--deploy-tolerance must be >= 0, got {cfg.deploy_tolerance}"),
        (cfg.embedded_train >= 1, f"--embedded-train must be >= 1, got {cfg.embedded_train}"),
        (cfg.embedded_val >= 1, f"--embedded-val must be >= 1, got {cfg.embedded_val}"),
        (cfg.data_seed >= 0, f"--data-seed must be >= 0, got {cfg.data_seed}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    from mobilebone.training.synthetic import MAX_CLASSES, MIN_CLASSES

    if cfg.task != "classification":
        return  # the task's own settings are checked by mobilebone.tasks.training
    if cfg.data_layout is not None:
        raise ValueError(f"{_flag('data_layout')} is for --task detection / segmentation")
    if cfg.aux_loss:
        raise ValueError("--aux-loss is for --task segmentation")
    if cfg.data is None and not MIN_CLASSES <= cfg.embedded_classes <= MAX_CLASSES:
        raise ValueError(
            f"--embedded-classes must be in [{MIN_CLASSES}, {MAX_CLASSES}], got {cfg.embedded_classes}"
        )
