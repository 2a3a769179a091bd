"""The backbone interface every model implements (timm's model contract), and ``features_only`` on it.

Heads (classification, detection, segmentation) consume only what is declared here: ``feature_info``
(channels and stride of each level) and ``forward_intermediates`` (the maps themselves), never model
internals. Names and semantics follow timm (``timm/models/_features.py``, ``byobnet.py``,
``mobilenetv3.py``) so code written for timm's MobileOne and MobileNetV4 runs unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mobilebone.limits import MIN_INPUT_SIZE

FEATURE_CLASSES = (None, "getter")  # timm's FeatureGetterNet: forward_intermediates on a pruned model
# ``output_stride=16`` keeps the last stage at stride 1 with dilation 2 (timm's ``output_stride=``; DeepLabV3's
# atrous backbone, Chen et al. 2017 §3.2), as torchvision's segmentation MobileNetV3 does (``dilated=True``).
OUTPUT_STRIDES = (16, 32)


def last_stage_stride_dilation(output_stride: int) -> tuple[int, int]:
    """``(stride, dilation)`` of the last stride-2 stage for ``output_stride`` (32: 2, 1; 16: 1, 2)."""
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(
            f"output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, got {output_stride}"
        )
    return (2, 1) if output_stride == 32 else (1, 2)


@dataclass(frozen=True)
class FeatureInfo:
    """One feature level: channel count, total stride with respect to the input, and producing module.

    ``info["num_chs"]`` works too, as on timm's dict entries.
    """

    num_chs: int
    reduction: int
    module: str

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class FeatureInfoList(list[FeatureInfo]):
    """The levels of a model, as a list that also answers timm's ``FeatureInfo`` queries."""

    def _select(self, idx: int | Sequence[int] | None) -> list[FeatureInfo] | FeatureInfo:
        if idx is None:
            return list(self)
        if isinstance(idx, int):
            return self[idx]
        return [self[i] for i in idx]

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        """The ``key`` field of level ``idx`` (a list for all or several levels)."""
        chosen = self._select(idx)
        if isinstance(chosen, FeatureInfo):
            return chosen[key]
        return [info[key] for info in chosen]

    def get_dicts(self, keys: Iterable[str] | None = None, idx: int | Sequence[int] | None = None) -> Any:
        """The levels as dicts (only ``keys`` when given), as timm's ``FeatureInfo.get_dicts``."""
        chosen = self._select(idx)
        infos = [chosen] if isinstance(chosen, FeatureInfo) else chosen
        dicts = [asdict(i) if keys is None else {k: i[k] for k in keys} for i in infos]
        return dicts[0] if isinstance(chosen, FeatureInfo) else dicts

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        """Channel count of each level (or of level ``idx``)."""
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        """Stride of each level with respect to the input (or of level ``idx``)."""
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        """Name of the module producing each level (or level ``idx``)."""
        return self.get("module", idx)


def feature_take_indices(
    num_levels: int, indices: int | Sequence[int] | None = None
) -> tuple[list[int], int]:
    """timm's index rule: ``None`` all levels, an int the last n, a sequence those (negative from the end).

    Returns the absolute indices and the largest one. Out-of-range indices raise a ``ValueError``.
    """
    if indices is None:
        indices = num_levels
    if isinstance(indices, int):
        if not 0 < indices <= num_levels:
            raise ValueError(
                f"last-n indices={indices} out of range: the model has {num_levels} feature levels"
            )
        take = list(range(num_levels - indices, num_levels))
    else:
        take = []
        for i in indices:
            if not -num_levels <= i < num_levels:
                raise ValueError(
                    f"out_indices {tuple(indices)} out of range: the model has {num_levels} feature levels"
                )
            take.append(i % num_levels)
        if not take:
            raise ValueError("out_indices is empty; name at least one feature level")
    return take, max(take)


def _is_fx_symbolic_tracing() -> bool:
    # ``is_fx_symbolic_tracing`` (torch ≥ 2.6) avoids the log line the older ``is_fx_tracing`` prints.
    fx = torch.fx._symbolic_trace
    return bool(getattr(fx, "is_fx_symbolic_tracing", fx.is_fx_tracing)())


def is_graph_capture() -> bool:
    """True under FX tracing, TorchScript scripting or tracing, ``torch.export`` and ``torch.compile``."""
    return (
        torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or _is_fx_symbolic_tracing()
        or torch.compiler.is_compiling()
    )


def check_input(x: Tensor, in_chans: int, min_size: int = MIN_INPUT_SIZE) -> None:
    """Raise a ``ValueError`` that says how to fix an input the backbone cannot take.

    Skipped while a graph is captured: shapes are symbolic there, and the check is Python control flow
    that FX cannot trace and ``torch.compile`` would turn into guards.
    """
    if is_graph_capture():
        return
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
    """Base class of every model: a stem, a sequence of stages, a classification head.

    Subclasses set ``in_chans``, ``num_features`` (channels of ``forward_features``), ``head_hidden_size``
    (width of ``forward_head(x, pre_logits=True)``), ``num_classes``, ``drop_path_rate``, ``feature_info``
    and ``stage_ends`` (for each level, how many entries of ``stage_modules()`` produce it), and implement
    ``stem``, ``stage_modules``, ``forward_head``, ``reset_classifier``, ``get_classifier``,
    ``group_matcher`` and ``_prune_head``. Everything else of timm's contract is built here on those.
    """

    in_chans: int
    num_features: int
    head_hidden_size: int
    drop_path_rate: float
    num_classes: int
    feature_info: FeatureInfoList
    stage_ends: list[int]
    stem: nn.Module
    grad_checkpointing: bool = False
    # State-dict prefixes removed by prune_intermediate_layers; checkpoint loading ignores their keys.
    pruned_prefixes: tuple[str, ...] = ()

    paper_ids: str = ""  # the architecture's paper (timm's ``paper_ids`` key)
    weights_license: str = ""  # licence of the family's published weights (timm's ``license`` for its tags)

    # ------------------------------------------------------------------ pretrained_cfg / default_cfg
    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """Eval preprocessing and provenance of the weights (timm's keys); ``default_cfg`` is the same dict.

        Keys that follow from the model itself are refreshed on every read, so they stay true after
        ``reparameterize_model``, pruning or a weight tag changing ``input_size``: ``first_conv`` and
        ``classifier`` (module names), ``pool_size`` (the stride-32 map at ``input_size``), ``num_classes``.
        """
        cfg = self.__dict__.get("_pretrained_cfg")
        if cfg is None:
            cfg = {}
            self.__dict__["_pretrained_cfg"] = cfg
        height, width = tuple(cfg.get("input_size", (self.in_chans, 224, 224)))[-2:]
        cfg["pool_size"] = (-(-height // 32), -(-width // 32))
        cfg["first_conv"] = self.first_conv_name()
        cfg["classifier"] = self.classifier_name()
        cfg["num_classes"] = self.num_classes
        cfg.setdefault("paper_ids", self.paper_ids)
        if "tag" in cfg and self.weights_license:
            cfg.setdefault("license", self.weights_license)
        return cfg

    @pretrained_cfg.setter
    def pretrained_cfg(self, cfg: dict[str, Any]) -> None:
        self.__dict__["_pretrained_cfg"] = cfg

    @property
    def default_cfg(self) -> dict[str, Any]:
        """timm's older name of ``pretrained_cfg`` (the same dict object)."""
        return self.pretrained_cfg

    @default_cfg.setter
    def default_cfg(self, cfg: dict[str, Any]) -> None:
        self.pretrained_cfg = cfg

    # ------------------------------------------------------------------ parts the subclasses provide
    def first_conv_name(self) -> str | tuple[str, ...]:
        """The conv(s) that read the input image (timm's ``first_conv``), as module names."""
        raise NotImplementedError

    def classifier_name(self) -> str:
        """The module name of the final linear layer (timm's ``classifier``)."""
        raise NotImplementedError

    def stage_modules(self) -> nn.Sequential:
        """The sequence of stages after the stem (``stages`` / ``blocks``)."""
        raise NotImplementedError

    def _set_stage_modules(self, stages: nn.Sequential) -> None:
        raise NotImplementedError

    def _prune_head(self, num_chs: int, prune_end: bool) -> None:
        """Drop the head (and, with ``prune_end``, what is sized for the last stage)."""
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Map the last feature map to logits (or to the pooled vector when ``pre_logits``)."""
        raise NotImplementedError

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier for ``num_classes`` (0 removes it); ``global_pool=""`` keeps the map."""
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        """The final linear layer (``nn.Identity`` without classes)."""
        raise NotImplementedError

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Regexes grouping parameters by depth (stem, blocks) for layer-wise lr decay, as timm's."""
        raise NotImplementedError

    # ------------------------------------------------------------------ built on them
    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage in the backward pass instead of storing its activations."""
        self.grad_checkpointing = enable

    def _run_stage(self, stage: nn.Module, x: Tensor) -> Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled() and not is_graph_capture():
            # Non-reentrant: works with inputs that need no grad; RNG state is kept, so dropout and
            # drop path draw the same masks in the recomputation.
            from torch.utils.checkpoint import checkpoint

            out: Tensor = checkpoint(stage, x, use_reentrant=False)
            return out
        out = stage(x)
        return out

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """The maps of the feature levels ``indices`` (timm's rule) and, unless ``intermediates_only``, the
        final ``forward_features`` output. ``stop_early`` skips stages after the last level asked for.

        ``norm`` is accepted for timm compatibility; these convnets have no final norm to apply.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW' for these convnets, got {output_fmt!r}")
        if stop_early and not intermediates_only:
            raise ValueError("stop_early=True needs intermediates_only=True (the final features are skipped)")
        take, max_index = feature_take_indices(len(self.stage_ends), indices)
        take_stages = [self.stage_ends[i] for i in take]
        stages = self.stage_modules()
        last = self.stage_ends[max_index] if stop_early else len(stages)
        check_input(x, self.in_chans)
        x = self.stem(x)
        intermediates = [x] if 0 in take_stages else []
        for index, stage in enumerate(stages):
            if index >= last:
                break
            x = self._run_stage(stage, x)
            if index + 1 in take_stages:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Remove the stages after the last level in ``indices`` and (``prune_head``) the head.

        Returns the kept absolute level indices. A model cut before its last stage loses its head too,
        since the head is sized for the last stage (timm does the same).
        """
        take, max_index = feature_take_indices(len(self.stage_ends), indices)
        num_chs = self.feature_info[max_index].num_chs
        end = self.stage_ends[max_index]
        stages = self.stage_modules()
        prune_end = end < len(stages)
        if prune_end:
            self.pruned_prefixes += tuple(f"{self._stage_prefix()}{i}." for i in range(end, len(stages)))
            self._set_stage_modules(stages[:end])
            self.num_features = num_chs
        if prune_end or prune_head:
            self._prune_head(num_chs, prune_end)
        return take

    def _stage_prefix(self) -> str:
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map, the input of the head: ``forward_intermediates``' final output."""
        check_input(x, self.in_chans)
        x = self.stem(x)
        stages = self.stage_modules()
        if self.grad_checkpointing:
            for stage in stages:
                x = self._run_stage(stage, x)
            return x
        # One call of the whole sequence, so per-module tools (MAC counts by stage) see ``stages``/``blocks``.
        out: Tensor = stages(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class FeatureExtractor(nn.Module):
    """``features_only=True``: the backbone pruned to what ``out_indices`` need, returning those maps.

    As timm's ``FeatureGetterNet``: stages after the deepest level asked for and the head are removed,
    so every parameter gets a gradient (DDP without ``find_unused_parameters``).
    """

    def __init__(
        self,
        backbone: Backbone,
        out_indices: int | Sequence[int] | None = None,
        feature_cls: str | None = None,
    ) -> None:
        super().__init__()
        if feature_cls not in FEATURE_CLASSES:
            raise ValueError(
                f"feature_cls={feature_cls!r} is not supported; use 'getter' (or leave it unset)"
            )
        levels = len(backbone.feature_info)
        take = feature_take_indices(levels, tuple(range(levels)) if out_indices is None else out_indices)[0]
        self.out_indices = tuple(take)
        backbone.prune_intermediate_layers(self.out_indices, prune_head=True)
        self.backbone = backbone
        self.in_chans = backbone.in_chans
        self.num_classes = 0
        self.feature_info = FeatureInfoList(backbone.feature_info[i] for i in self.out_indices)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """The backbone's ``pretrained_cfg``."""
        return self.backbone.pretrained_cfg

    @property
    def default_cfg(self) -> dict[str, Any]:
        """The backbone's ``pretrained_cfg`` (timm's older name)."""
        return self.backbone.pretrained_cfg

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage of the backbone in the backward pass."""
        self.backbone.set_grad_checkpointing(enable)

    def forward(self, x: Tensor) -> list[Tensor]:
        out = self.backbone.forward_intermediates(x, self.out_indices, intermediates_only=True)
        assert isinstance(out, list)
        return out
