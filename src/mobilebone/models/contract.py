"""The backbone interface every model implements, and the ``features_only`` wrapper built on it.

Heads (classification, detection, segmentation) consume only what is declared here: ``feature_info``
(channels and stride of each level) and ``forward_levels`` (the maps themselves), never model internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

MIN_INPUT_SIZE = 32


@dataclass(frozen=True)
class FeatureInfo:
    """One feature level: channel count, total stride with respect to the input, and producing module."""

    num_chs: int
    reduction: int
    module: str


def check_input(x: Tensor, in_chans: int, min_size: int = MIN_INPUT_SIZE) -> None:
    """Raise a ``ValueError`` that says how to fix an input the backbone cannot take."""
    if x.dim() != 4:
        raise ValueError(
            f"expected a 4-D image batch (N, C, H, W) with C={in_chans}, got a tensor of shape "
            f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)"
        )
    if x.shape[1] != in_chans:
        raise ValueError(
            f"expected {in_chans} input channels, got {x.shape[1]} (input shape {tuple(x.shape)}); "
            f"convert the images or build the model with in_chans={x.shape[1]}"
        )
    height, width = x.shape[-2], x.shape[-1]
    if height < min_size or width < min_size:
        raise ValueError(
            f"input must be at least {min_size}x{min_size} pixels, got {height}x{width}; resize the images"
        )


class Backbone(nn.Module):
    """Base class of every model: a stack of feature levels followed by a classification head.

    Subclasses set ``in_chans``, ``num_features`` (channels of ``forward_features``), ``head_hidden_size``
    (width of ``forward_head(x, pre_logits=True)``, the classifier's input), ``num_classes``,
    ``drop_path_rate`` (the stochastic-depth rate it was built with) and ``feature_info``, and implement
    ``forward_levels`` (all level outputs), ``forward_features``, ``forward_head`` and ``reset_classifier``.
    """

    in_chans: int
    num_features: int
    head_hidden_size: int
    drop_path_rate: float
    num_classes: int
    feature_info: list[FeatureInfo]
    pretrained_cfg: dict

    def forward_levels(self, x: Tensor) -> list[Tensor]:
        """Return the output of every feature level, in the order of ``feature_info``."""
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        """Return the last feature map, the input of the head."""
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Map the last feature map to logits (or to the pooled vector when ``pre_logits``)."""
        raise NotImplementedError

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` (0 removes it)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class FeatureExtractor(nn.Module):
    """``features_only=True``: a backbone without its head that returns the maps of selected levels."""

    def __init__(self, backbone: Backbone, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        levels = len(backbone.feature_info)
        indices = tuple(range(levels)) if out_indices is None else tuple(out_indices)
        for index in indices:
            if not -levels <= index < levels:
                raise ValueError(f"out_indices {indices} out of range: the model has {levels} feature levels")
        self.out_indices = tuple(i % levels for i in indices)
        backbone.reset_classifier(0)
        self.backbone = backbone
        self.in_chans = backbone.in_chans
        self.feature_info = [backbone.feature_info[i] for i in self.out_indices]
        self.pretrained_cfg = backbone.pretrained_cfg

    def forward(self, x: Tensor) -> list[Tensor]:
        levels = self.backbone.forward_levels(x)
        return [levels[i] for i in self.out_indices]
