"""Training: the papers' recipes, the embedded shapes set, a resumable loop that also runs under torchrun.

``resolve_config(model, data, **overrides)`` builds a ``TrainConfig`` from a recipe; ``train(cfg)`` runs it
and returns a ``TrainResult``; ``evaluate(models, loader)`` reports top-1 / top-5.
"""

from mobilebone.training.config import RECIPES, TrainConfig, resolve_config
from mobilebone.training.evaluate import EvalResult, evaluate
from mobilebone.training.loop import TrainResult, train

__all__ = ["RECIPES", "EvalResult", "TrainConfig", "TrainResult", "evaluate", "resolve_config", "train"]
