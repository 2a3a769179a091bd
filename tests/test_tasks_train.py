"""The time-boxed synthetic training harness: it trains, scores held-out data, and the fused model agrees."""

from __future__ import annotations

import pytest

from mobilebone.tasks.train import SyntheticRunConfig, run_synthetic


def test_synthetic_run_scores_the_model_and_its_fused_form() -> None:
    cfg = SyntheticRunConfig(
        model="lraspp_mobilenetv4_conv_small",
        steps=3,
        batch_size=2,
        image_size=48,
        data_size=64,
        val_images=4,
        threads=1,
    )
    result = run_synthetic(cfg)
    assert result["steps_done"] == 3 and result["config"]["model"] == cfg.model
    assert result["seconds_per_step"] > 0
    scores, fused = result["held_out"], result["held_out_fused"]
    assert 0.0 <= scores["miou"] <= 1.0 and 0.0 <= scores["pixel_accuracy"] <= 1.0
    assert fused["miou"] == pytest.approx(scores["miou"], abs=0.005)
    assert fused["pixel_accuracy"] == pytest.approx(scores["pixel_accuracy"], abs=0.005)
