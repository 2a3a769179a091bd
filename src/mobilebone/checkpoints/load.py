"""Strict loading into a mobilebone model: format conversion, fused/train-time handling, one clear error.

Pipeline: read (safely) → detect the layout → rename keys to mobilebone's → check the model family →
load strictly. A train-time checkpoint offered to a deploy-form model is loaded into a train-time twin,
reparameterized and copied; a fused checkpoint cannot become a train-time model (the branches are gone),
so that raises an error saying to build the model with ``deploy=True``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mobilebone.checkpoints.detect import Layout, detect_layout, is_fused_state, to_mobilebone
from mobilebone.checkpoints.errors import CheckpointError
from mobilebone.checkpoints.io import read_checkpoint, unwrap
from mobilebone.checkpoints.native import FORMAT_NAME, json_field, native_config, unwrap_model
from mobilebone.registry import ModelEntry, PretrainedTag, get_entry
from mobilebone.transforms import MAX_INPUT_SIZE

CLASSIFIER_PREFIXES = ("head.fc.", "classifier.")
_SHOWN = 3  # keys listed per kind in the one-line mismatch report


@dataclass
class Checkpoint:
    """A checkpoint read and converted to mobilebone keys, with what is known about it."""

    state: dict[str, Tensor]
    layout: Layout
    origin: str
    metadata: dict[str, str] = field(default_factory=dict)
    tag: PretrainedTag | None = None  # set when the source was a weight tag

    @property
    def model_name(self) -> str | None:
        """The model the checkpoint was saved from, when its metadata says (native files)."""
        return self.metadata.get("model_name") or None

    @property
    def num_classes(self) -> int:
        """Classifier width (0 for a headless checkpoint)."""
        for prefix in CLASSIFIER_PREFIXES:
            weight = self.state.get(f"{prefix}weight")
            if weight is not None:
                return int(weight.shape[0])
        return 0

    @property
    def in_chans(self) -> int | None:
        """Input channels of the stem conv, when it can be found."""
        for key in ("stem.conv.weight", "stem.reparam_conv.weight", "stem.conv_kxk.0.conv.weight"):
            if key in self.state:
                return int(self.state[key].shape[1])
        return None

    @property
    def class_names(self) -> list[str] | None:
        """The class names the weights were trained with (metadata ``classes``), ``None`` when not recorded."""
        names = json_field(self.metadata, "classes", list, self.origin)
        if names is None:
            return None
        if len(names) != self.num_classes or not all(isinstance(n, str) for n in names):
            raise CheckpointError(
                f"{self.origin}: its metadata field 'classes' lists {len(names)} entries for "
                f"{self.num_classes} classes (or non-text names); save or convert it again"
            )
        return list(names)

    def cfg(self) -> dict[str, Any]:
        """The eval preprocessing the weights come with (tag or native metadata), ``{}`` if unknown."""
        if self.tag is not None:
            return dict(self.tag.cfg())
        cfg = native_config(self.metadata, self.origin).get("pretrained_cfg") or {}
        if not isinstance(cfg, dict):
            raise CheckpointError(f"{self.origin}: its metadata field 'config' has no valid pretrained_cfg")
        # JSON has no tuples; timm's (and the tags') cfg values are tuples: input_size, mean, std.
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
        if "input_size" in cfg:
            _check_input_size(cfg["input_size"], self.origin)
        return cfg

    def check_finite(self) -> None:
        """Refuse weights holding NaN or infinity (a diverged run), naming the first such tensor."""
        for key, value in self.state.items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                bad = int((~torch.isfinite(value)).sum())
                raise CheckpointError(
                    f"{self.origin}: tensor {key} holds {bad} non-finite value{'s' if bad != 1 else ''} "
                    f"(NaN or infinity), so every prediction would be meaningless; use an earlier checkpoint"
                )


def _check_input_size(value: Any, origin: str) -> None:
    """Refuse a recorded ``input_size`` that is malformed or beyond ``MAX_INPUT_SIZE`` (before allocating)."""
    sides = [value] if isinstance(value, int) else list(value)[-2:] if isinstance(value, tuple) else []
    if not sides or not all(isinstance(s, int) and not isinstance(s, bool) for s in sides):
        raise CheckpointError(f"{origin}: its metadata input_size {value!r} is not (C, H, W) integers")
    if not all(1 <= s <= MAX_INPUT_SIZE for s in sides):
        raise CheckpointError(
            f"{origin}: its metadata asks for input_size {value!r}; sides must be 1 to {MAX_INPUT_SIZE} px "
            f"(the file was edited or damaged)"
        )


def read(source: str | Path | Mapping[str, Any], arch: str | None = None) -> Checkpoint:
    """Read a file, a state dict or a weight tag (of ``arch`` when bare) into a ``Checkpoint``."""
    tag = None
    metadata: dict[str, str] = {}
    if isinstance(source, Mapping):
        raw, origin = unwrap(source, origin="state dict"), "state dict"
    else:
        from mobilebone.checkpoints import tags

        text = str(source)
        if not Path(text).expanduser().exists() and tags.is_tag(text, arch):
            from mobilebone.checkpoints.hub import download

            tag = tags.get_tag(text, arch)
            path = download(tag)
        else:
            path = Path(text).expanduser()
            if not path.exists() and (text.startswith("hf-hub:") or "://" in text):
                raise CheckpointError(
                    f"{text}: URLs and hf-hub: names are not fetched; pass a weight tag (arch.tag, see "
                    f"`mobilebone list --pretrained`) or download the file and pass its path"
                )
            if not path.exists():
                raise FileNotFoundError(
                    f"checkpoint not found: {text} (neither a file nor a known weight tag); check the path "
                    f"or run `mobilebone list --pretrained` for tags"
                )
        raw, metadata = read_checkpoint(path)
        origin = str(path) if tag is None else tag.name
    if all(k.startswith("backbone.") for k in raw):  # a features_only model saved whole
        raw = {k[len("backbone.") :]: v for k, v in raw.items()}
    layout = detect_layout(raw)
    if metadata.get("format") == FORMAT_NAME:  # native files name their writer; keys alone may not
        layout = Layout(FORMAT_NAME, layout.family, layout.fused)
    return Checkpoint(to_mobilebone(raw, layout), layout, origin, metadata, tag)


def _entry(model: nn.Module) -> ModelEntry | None:
    """The registry entry of a model built by ``create_model`` (its ``pretrained_cfg`` names it)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    try:
        return get_entry(str(cfg["architecture"])) if "architecture" in cfg else None
    except ValueError:
        return None


def _accepts(entry: ModelEntry, layout: Layout) -> bool:
    """Whether checkpoints in ``layout`` load into ``entry``'s model (same family, a declared converter)."""
    return layout.family == entry.family and (layout.name == FORMAT_NAME or layout.name in entry.converters)


def _model_name(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__)


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def plural(count: int, noun: str) -> str:
    """``noun`` for one, its English plural otherwise ("key" → "keys", "mismatch" → "mismatches")."""
    if count == 1:
        return noun
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x", "z")) else "s")


def _listing(count: int, noun: str, items: list[str]) -> str:
    more = f", … {count - len(items)} more" if count > len(items) else ""
    return f"{count} {plural(count, noun)} ({', '.join(items)}{more})"


def _hint(ckpt: Checkpoint, model: nn.Module, shape_keys: list[str]) -> str:
    name = _model_name(model)
    saved = (ckpt.model_name or "").split(".", 1)[0]
    if saved and saved != name:
        return f"; the checkpoint is for {ckpt.model_name}: build create_model({saved!r}) instead"
    if shape_keys and all(k.startswith(CLASSIFIER_PREFIXES) for k in shape_keys):
        return (
            f"; the checkpoint has {ckpt.num_classes} classes: build the model with "
            f"num_classes={ckpt.num_classes}"
        )
    if ckpt.layout.name == "unknown":
        return (
            "; its keys match no supported layout (Apple/timm MobileOne, timm MobileNetV4, mobilebone): "
            "is it a checkpoint of another model?"
        )
    return "; is it a checkpoint of another model or variant?"


def load_state(
    model: nn.Module, ckpt: Checkpoint, *, strict: bool = True, skip_classifier: bool = False
) -> None:
    """Copy ``ckpt.state`` into ``model`` (already in mobilebone keys); raise one report on mismatch."""
    expected = model.state_dict()
    state = dict(ckpt.state)
    headless = getattr(model, "num_classes", None) == 0
    if headless or skip_classifier:
        # Headless models (features_only, num_classes=0) take the backbone of a classifier checkpoint.
        state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    pruned = tuple(getattr(model, "pruned_prefixes", ()))
    if pruned:  # features_only removed these stages / head (prune_intermediate_layers): skip their keys
        state = {k: v for k, v in state.items() if not k.startswith(pruned)}
    for key, value in expected.items():  # older exports drop BN's step counter; it is never used in eval
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    if skip_classifier:
        missing = [k for k in missing if not k.startswith(CLASSIFIER_PREFIXES)]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(_listing(len(missing), "missing key", missing[:_SHOWN]))
        if unexpected:
            parts.append(_listing(len(unexpected), "unexpected key", unexpected[:_SHOWN]))
        if mismatched:
            shown = [
                f"{k}: checkpoint {_shape(state[k])} vs model {_shape(expected[k])}"
                for k in mismatched[:_SHOWN]
            ]
            parts.append(_listing(len(mismatched), "shape mismatch", shown))
        form = "fused" if is_fused_state(list(expected)) else "train-time"
        report = (
            f"checkpoint {ckpt.origin} ({ckpt.layout.describe()}) does not fit {_model_name(model)} "
            f"({form} form): {'; '.join(parts)}{_hint(ckpt, model, mismatched)}"
        )
        if strict:
            raise CheckpointError(report)
        warnings.warn(f"partial load: {report}", stacklevel=3)
        state = {k: v for k, v in state.items() if k in expected and k not in mismatched}
    model.load_state_dict(state, strict=False)


def _train_time_twin(model: nn.Module) -> nn.Module:
    """A train-time copy of a deploy-form model's architecture (same classes and channels, same dtype)."""
    spec = getattr(model, "spec", None)
    if spec is None:
        raise CheckpointError(
            f"cannot load a train-time checkpoint into the fused {type(model).__name__}: build the model "
            f"with deploy=False, load, then call mobilebone.reparameterize_model"
        )
    twin = type(model)(spec, num_classes=model.num_classes, in_chans=model.in_chans, deploy=False)
    reference = next(model.parameters(), None)
    if reference is not None:
        twin = twin.to(dtype=reference.dtype)
    twin.pretrained_cfg = copy.deepcopy(getattr(model, "pretrained_cfg", {}))  # type: ignore[assignment]
    return twin


def load_into(
    model: nn.Module, ckpt: Checkpoint, *, strict: bool = True, skip_classifier: bool = False
) -> nn.Module:
    """Load a read ``Checkpoint`` into ``model`` (or its backbone), reparameterizing on the way if needed."""
    from mobilebone.reparam import reparameterize_model

    target = unwrap_model(model)
    entry = _entry(target)
    if entry is not None and ckpt.layout.family is not None and not _accepts(entry, ckpt.layout):
        raise CheckpointError(
            f"checkpoint {ckpt.origin} is a {ckpt.layout.describe()} checkpoint but the model is "
            f"{_model_name(target)}; build the matching model"
            + (f" (create_model({ckpt.model_name.split('.')[0]!r}))" if ckpt.model_name else "")
        )
    model_fused = is_fused_state(list(target.state_dict()))
    known = entry is not None and _accepts(entry, ckpt.layout)  # else: plain strict load and its report
    if known and ckpt.layout.fused and not model_fused:
        raise CheckpointError(
            f"checkpoint {ckpt.origin} holds the fused (reparameterized) form, which cannot be turned back "
            f"into train-time branches; build the model with deploy=True, e.g. "
            f"create_model({_model_name(target)!r}, deploy=True)"
        )
    if entry is not None and known and model_fused and not ckpt.layout.fused:
        twin = _train_time_twin(target)
        load_state(twin, ckpt, strict=strict, skip_classifier=skip_classifier)
        fused_state = reparameterize_model(twin, inplace=True).state_dict()
        load_state(
            target, Checkpoint(fused_state, Layout(FORMAT_NAME, entry.family, True), ckpt.origin), strict=True
        )
    else:
        load_state(target, ckpt, strict=strict, skip_classifier=skip_classifier)
    return model


def load_checkpoint(
    model: nn.Module, source: str | Path | Mapping[str, Any], *, strict: bool = True
) -> nn.Module:
    """Load weights into ``model`` from a file, a state dict or a weight tag; returns ``model``.

    Formats are detected from the keys: timm MobileOne / MobileNetV4, Apple ml-mobileone (unfused and
    fused) and mobilebone's native safetensors. Any mismatch raises one ``CheckpointError`` listing the
    missing, unexpected and shape-mismatched keys (``strict=False`` loads what fits and warns instead).
    """
    target = unwrap_model(model)
    ckpt = read(source, arch=_model_name(target))
    with torch.no_grad():
        load_into(model, ckpt, strict=strict)
    current = getattr(target, "pretrained_cfg", None)
    if ckpt.tag is not None and isinstance(current, dict):
        current.update(ckpt.tag.cfg())
    return model
