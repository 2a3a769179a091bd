"""The benchmark zoo: our models plus torchvision and timm baselines, built by name with random weights.

Names are ours as registered (``mobileone_s0``), ``torchvision/<name>`` and ``timm/<name>``. Baselines
are the networks the MobileOne and MobileNetV4 papers compare with: efficient convnets from torchvision
and, when timm is installed, the mobile transformers and hybrids. No weights are downloaded: latency
and complexity do not depend on the weight values.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

# torchvision convnets (MobileOne paper Table 9 / MobileNetV4 comparisons): name → kind.
TORCHVISION_MODELS: dict[str, str] = {
    "mobilenet_v2": "convnet",
    "mobilenet_v3_small": "convnet",
    "mobilenet_v3_large": "convnet",
    "efficientnet_b0": "convnet",
    "shufflenet_v2_x1_0": "convnet",
    "mnasnet1_0": "convnet",
    "regnet_y_400mf": "convnet",
    "resnet18": "convnet",
    "resnet50": "convnet",
}

# timm mobile transformers and hybrids that the papers compare with.
TIMM_MODELS: dict[str, str] = {
    "deit_tiny_patch16_224": "transformer",
    "levit_conv_128s": "hybrid",  # the conv-BN variant: levit_128s keeps BatchNorm after Linear layers
    "mobilevit_xs": "hybrid",
    "mobilevit_s": "hybrid",
    "mobilevitv2_075": "hybrid",
    "efficientformer_l1": "hybrid",
    "fastvit_t8": "hybrid",
    "edgenext_x_small": "hybrid",
}

# `mobilebone bench` without --models: all of ours plus a spread of convnet and transformer baselines,
# small enough that the sweep stays within a few minutes on 2 cores (`--models '*'` for the whole zoo).
DEFAULT_BASELINES = (
    "torchvision/mobilenet_v2",
    "torchvision/mobilenet_v3_large",
    "torchvision/efficientnet_b0",
    "torchvision/shufflenet_v2_x1_0",
    "torchvision/resnet18",
    "timm/deit_tiny_patch16_224",
    "timm/levit_conv_128s",
    "timm/mobilevit_xs",
    "timm/efficientformer_l1",
    "timm/fastvit_t8",
)


def _fuse_ours(model: nn.Module) -> nn.Module:
    from mobilebone.reparam import reparameterize_model

    return reparameterize_model(model)


def _fuse_timm(model: nn.Module) -> nn.Module:
    """Deploy form as a timm user gets it: ``timm.utils.reparameterize_model``, then sealed.

    timm's ``reparameterize()`` is not idempotent everywhere (FastViT's ``RepMixer`` deletes its
    branches and fails when called again), while our export and latency code re-run our walker, which
    calls every ``reparameterize`` it finds. Shadowing the method on the fused instances makes the
    walker skip them; the model's forward is unchanged.
    """
    from timm.utils import reparameterize_model as timm_reparameterize

    fused = timm_reparameterize(model.eval())
    for module in fused.modules():
        if callable(getattr(module, "reparameterize", None)):
            object.__setattr__(module, "reparameterize", None)
    return fused


@dataclass(frozen=True)
class ZooEntry:
    """One benchmarkable model: its zoo name, where it comes from, convnet/transformer/hybrid, builders."""

    name: str
    source: str
    kind: str
    build: Callable[[], nn.Module]
    fuse: Callable[[nn.Module], nn.Module] = _fuse_ours

    def deploy(self) -> nn.Module:
        """The model in its deploy (reparameterized, eval) form."""
        return self.fuse(self.build())


def _ours(name: str) -> ZooEntry:
    from mobilebone import create_model
    from mobilebone.registry import get_entry

    kind = get_entry(name).kind
    return ZooEntry(name, "mobilebone", kind, lambda: create_model(name))


def _torchvision(name: str) -> ZooEntry:
    def build() -> nn.Module:
        import torchvision

        return torchvision.models.get_model(name, weights=None)

    return ZooEntry(f"torchvision/{name}", "torchvision", TORCHVISION_MODELS[name], build)


def timm_entry(name: str, kind: str | None = None) -> ZooEntry:
    """A zoo entry for any timm model name (random init), fused the way timm users fuse it."""

    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)

    kind = kind or TIMM_MODELS.get(name, "convnet")
    return ZooEntry(f"timm/{name}", "timm", kind, build, _fuse_timm)


def timm_available() -> bool:
    """Whether timm is importable (its models join the zoo only then)."""
    return importlib.util.find_spec("timm") is not None


def zoo() -> dict[str, ZooEntry]:
    """Every model the benchmark knows, by zoo name: ours first, then torchvision, then timm if installed."""
    from mobilebone import list_models

    entries = [_ours(n) for n in list_models()]
    entries += [_torchvision(n) for n in TORCHVISION_MODELS]
    if timm_available():
        entries += [timm_entry(n) for n in TIMM_MODELS]
    return {e.name: e for e in entries}


def default_models() -> list[ZooEntry]:
    """The default sweep: every mobilebone model and ``DEFAULT_BASELINES`` (those installed)."""
    known = zoo()
    return [e for e in known.values() if e.source == "mobilebone" or e.name in DEFAULT_BASELINES]


def resolve_models(patterns: list[str]) -> list[ZooEntry]:
    """Zoo entries for names or shell-style globs (space- or comma-separated), in the given order.

    An unknown name raises a one-line ``ValueError`` listing the closest zoo names.
    """
    known = zoo()
    chosen: dict[str, ZooEntry] = {}
    for pattern in (p.strip() for item in patterns for p in item.split(",") if p.strip()):
        if any(c in pattern for c in "*?["):
            matched = [n for n in known if fnmatch.fnmatch(n, pattern)]
        else:
            matched = [pattern] if pattern in known else []
        if not matched:
            close = suggestions(pattern, list(known))
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            extra = "" if timm_available() or not pattern.startswith("timm/") else " (timm is not installed)"
            raise ValueError(
                f"unknown model {pattern!r}{hint}{extra}; run `mobilebone bench --list` to see the zoo"
            )
        for name in matched:
            chosen.setdefault(name, known[name])
    return list(chosen.values())


def suggestions(pattern: str, names: list[str], n: int = 3) -> list[str]:
    """Zoo names close to ``pattern``, also matching the part after ``source/`` (``resnet18`` → ``torchvision/resnet18``)."""
    import difflib

    short: dict[str, list[str]] = {}
    for name in names:
        short.setdefault(name.rsplit("/", 1)[-1], []).append(name)
    query = pattern.rsplit("/", 1)[-1]
    found = list(short.get(query, []))  # exact short name: the prefixed entries first
    if len(query) >= 4:  # then names containing it (``mobilenet_v3`` → its small and large variants)
        found += [name for key, entries in short.items() if query in key for name in entries]
    for match in difflib.get_close_matches(query, list(short), n=n, cutoff=0.6):
        found += short[match]
    found += difflib.get_close_matches(pattern, names, n=n, cutoff=0.5)
    return [name for name in dict.fromkeys(found) if name != pattern][:n]
