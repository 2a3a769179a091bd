"""Schedules and parameter groups: learning rate, weight-decay anneal, no-decay groups, EMA warm-up, augmentation."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from mobilebone import create_model
from mobilebone.training.config import TrainConfig, resolve_config
from mobilebone.training.data import train_transform
from mobilebone.training.ema import make_ema
from mobilebone.training.optim import build_optimizer, build_scheduler, param_groups, set_weight_decay


def _lrs(cfg: TrainConfig, lr: float, steps_per_epoch: int) -> list[float]:
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model, cfg, lr)
    scheduler = build_scheduler(optimizer, lr=lr, cfg=cfg, steps_per_epoch=steps_per_epoch)
    seen = []
    for _ in range(cfg.epochs * steps_per_epoch):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_lr_warms_up_linearly_then_follows_a_cosine_to_min_lr() -> None:
    cfg = TrainConfig(epochs=5, warmup_epochs=1, min_lr=0.001, optimizer="sgd")
    lrs = _lrs(cfg, lr=0.1, steps_per_epoch=10)
    assert len(lrs) == 50
    # Warm-up: 1/10, 2/10, ..., 10/10 of the peak over the first epoch's 10 steps.
    torch.testing.assert_close(lrs[:10], [0.01 * k for k in range(1, 11)])
    assert lrs[10] == pytest.approx(0.1)  # the cosine starts at the peak
    assert lrs[30] == pytest.approx((0.1 + 0.001) / 2)  # half way through the 40 cosine steps: the mean
    # 1 step before the end: 39/40 of the way, by hand: 0.001 + 0.0495 * (1 + cos(39π/40))
    assert lrs[49] == pytest.approx(0.001 + 0.0495 * (1 + math.cos(39 * math.pi / 40)))
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))  # never rises after warm-up


def test_mobileone_weight_decay_anneals_from_1e_4_to_1e_5() -> None:
    cfg = resolve_config("mobileone_s0", "/data")
    model = create_model("mobileone_s0", num_classes=10)
    optimizer = build_optimizer(model, cfg, lr=0.1)
    decayed, plain = optimizer.param_groups
    assert set_weight_decay(optimizer, cfg, 0.0) == pytest.approx(1e-4)
    assert (decayed["weight_decay"], plain["weight_decay"]) == (pytest.approx(1e-4), 0.0)
    assert set_weight_decay(optimizer, cfg, 0.5) == pytest.approx(5.5e-5)  # cosine midpoint of 1e-4, 1e-5
    assert set_weight_decay(optimizer, cfg, 1.0) == pytest.approx(1e-5)
    assert (decayed["weight_decay"], plain["weight_decay"]) == (pytest.approx(1e-5), 0.0)
    constant = resolve_config("mobilenetv4_conv_small", "/data")  # AdamW recipe: constant 0.05
    assert set_weight_decay(optimizer, constant, 0.7) == pytest.approx(0.05)


def test_norms_and_biases_get_no_weight_decay() -> None:
    model = create_model("mobileone_s0", num_classes=10)
    decay, no_decay = param_groups(model, 1e-4)
    ids_decay = {id(p) for p in decay["params"]}  # type: ignore[attr-defined]
    ids_plain = {id(p) for p in no_decay["params"]}  # type: ignore[attr-defined]
    norms = (nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm)
    expected_decay, expected_plain = set(), set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, norms) or name == "bias":
                expected_plain.add(id(param))
            elif isinstance(module, (nn.Conv2d, nn.Linear)) and name == "weight":
                expected_decay.add(id(param))
    assert expected_plain and expected_decay
    assert ids_plain == expected_plain and ids_decay == expected_decay
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (1e-4, 0.0)


def test_ema_warm_up_follows_the_timm_formula() -> None:
    model = nn.Linear(1, 1, bias=False)
    ema = make_ema(model, decay=0.9999)
    values = []
    for target in (0.0, 1.0, 1.0):
        with torch.no_grad():
            model.weight.fill_(target)
        ema.update_parameters(model)
        values.append(float(ema.module.weight))
    # 1st update copies; then decay_t = min(0.9999, (1 + t) / (10 + t)) with t updates so far:
    # t=1: 2/11 → 0 + (9/11)(1 - 0) = 9/11;  t=2: 3/12 → 9/11 + (3/4)(1 - 9/11) = 10.5/11.
    assert values == pytest.approx([0.0, 9 / 11, 10.5 / 11])


@pytest.mark.parametrize(
    ("augment", "op"), [("autoaugment", "AutoAugment"), ("randaugment", "RandAugment"), ("basic", None)]
)
def test_augmentation_paths(augment: str, op: str | None) -> None:
    from PIL import Image

    transform = train_transform(
        32, mean=(0.5,) * 3, std=(0.5,) * 3, interpolation="bicubic", min_crop=0.5, augment=augment
    )
    names = [type(t).__name__ for t in transform.transforms]  # type: ignore[attr-defined]
    policies = [n for n in names if n in ("AutoAugment", "RandAugment")]
    assert policies == ([op] if op else [])
    if op:
        policy = transform.transforms[names.index(op)]  # type: ignore[attr-defined]
        assert policy.interpolation.value == "bicubic"
    image = Image.new("RGB", (48, 40), (200, 30, 60))
    torch.manual_seed(0)
    out = transform(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    with pytest.raises(ValueError, match="unknown augment"):
        train_transform(
            32, mean=(0.5,) * 3, std=(0.5,) * 3, interpolation="bilinear", min_crop=0.5, augment="x"
        )


def test_recipe_table_is_keyed_by_recipe_name() -> None:
    from mobilebone.training.config import RECIPE_TABLE, model_recipe

    assert set(RECIPE_TABLE) == {"mobileone", "mobilenetv4", "embedded"}
    assert [
        model_recipe(m) for m in ("mobileone_s2", "mobilenetv4_conv_small", "mobilenetv4_hybrid_medium")
    ] == [
        "mobileone",
        "mobilenetv4",
        "mobilenetv4",
    ]
    assert resolve_config("mobilenetv4_conv_small", "/d").betas == (0.6, 0.999)
    assert resolve_config("mobilenetv4_conv_medium", "/d").betas == (0.9, 0.999)
