"""The deploy check: the best weights in deploy form must score what they score in train-time form.

Reparameterization (MobileOne paper, arXiv 2206.04040, §3.1: the branches of a block fold into one conv)
computes the same function up to float rounding, so on the same validation batches both forms must reach
the same primary metric. A difference beyond ``tolerance`` (in the metric's own units, e.g. top-1
percentage points) means the deploy model is not the trained model: the run fails with both scores, and
no deploy file is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from mobilebone.training.distributed import DistInfo
from mobilebone.training.errors import DeployMismatchError
from mobilebone.training.task import Task


@dataclass
class DeployCheck:
    """Both forms' metrics on the same batches, and the deploy model they came from."""

    deploy_model: nn.Module
    train_form: dict[str, float]
    deploy_form: dict[str, float]
    metric: str
    tolerance: float

    @property
    def difference(self) -> float:
        """|deploy − train-time| of the primary metric."""
        return abs(self.deploy_form[self.metric] - self.train_form[self.metric])


def verify(check: DeployCheck) -> None:
    """Raise ``DeployMismatchError`` naming both scores and the tolerance when they differ beyond it."""
    if not check.difference <= check.tolerance:  # written so that a NaN score fails too
        raise DeployMismatchError(
            f"deploy check failed: the reparameterized model scores {check.metric} "
            f"{check.deploy_form[check.metric]:.4g} but the train-time form scores "
            f"{check.train_form[check.metric]:.4g} on the same images (difference {check.difference:.4g}, "
            f"tolerance {check.tolerance:g}); the deploy weights were not saved"
        )


def deploy_check(
    task: Task, model: nn.Module, batches: Iterable[Any], info: DistInfo, *, tolerance: float
) -> DeployCheck:
    """Build ``model``'s deploy form, score both forms on the same batches, and ``verify`` them."""
    deployed = task.deploy(model)
    train_form, deploy_form = task.evaluate([model, deployed], batches, info)
    check = DeployCheck(deployed, train_form, deploy_form, task.primary_metric, tolerance)
    verify(check)
    return check
