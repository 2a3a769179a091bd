"""The benchmark zoo: our models plus torchvision and timm baselines, built by name with random weights.

Names are ours as registered (``mobileone_s0``), ``torchvision/<name>`` and ``timm/<name>``. Baselines
are the networks the MobileOne and MobileNetV4 papers compare with: efficient convnets from torchvision
and, when timm is installed, the mobile transformers and hybrids; plus fresher CPU- and mobile-oriented
timm peers (RepViT, EfficientViT M and B, GhostNetV3, CPUBone). No weights are downloaded: latency
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

# timm models, name → kind: first the mobile transformers and hybrids that the papers compare with, then
# the fresher CPU- and mobile-oriented peers a user would weigh today (all with ImageNet-1k classifiers at
# 224 px). Left out, see docs/pareto.md: fastvit_mci* (MobileCLIP image encoders, 512-d output, no
# ImageNet-1k head) and mobilenetv5_* (Gemma 3n's 768-px vision encoder, no classifier).
TIMM_MODELS: dict[str, str] = {
    "deit_tiny_patch16_224": "transformer",
    "levit_conv_128s": "hybrid",  # the conv-BN variant: levit_128s keeps BatchNorm after Linear layers
    "mobilevit_xs": "hybrid",
    "mobilevit_s": "hybrid",
    "mobilevitv2_075": "hybrid",
    "efficientformer_l1": "hybrid",
    "fastvit_t8": "hybrid",
    "edgenext_x_small": "hybrid",
    # RepViT (Wang et al., CVPR 2024, arXiv 2307.09283): a MobileNetV3-style convnet with RepVGG branches.
    "repvit_m0_9": "convnet",
    "repvit_m1_0": "convnet",
    "repvit_m1_1": "convnet",
    "repvit_m1_5": "convnet",
    "repvit_m2_3": "convnet",
    # EfficientViT (MSRA; Liu et al., CVPR 2023, arXiv 2305.07027): cascaded group attention.
    "efficientvit_m0": "hybrid",
    "efficientvit_m1": "hybrid",
    "efficientvit_m2": "hybrid",
    "efficientvit_m3": "hybrid",
    "efficientvit_m4": "hybrid",
    "efficientvit_m5": "hybrid",
    # EfficientViT (MIT; Cai et al., ICCV 2023, arXiv 2205.14756): ReLU linear attention.
    "efficientvit_b0": "hybrid",
    "efficientvit_b1": "hybrid",
    "efficientvit_b2": "hybrid",
    # GhostNetV3 (Liu et al., arXiv 2404.11202): reparameterized Ghost modules; timm has 1.0× weights only.
    "ghostnetv3_100": "convnet",
    # CPUBone (Nottebaum et al., CVPR 2026 Findings, arXiv 2603.26425): designed for low-parallelism CPUs.
    "cpubone_nano": "hybrid",
    "cpubone_t0": "hybrid",
    "cpubone_s0": "hybrid",
    "cpubone_b0_bfrobust": "hybrid",
}

# timm zoo models whose weights have no row in timm's results/results-imagenet.csv (at the commit that
# data/accuracy.csv cites), so no published top-1 to put on an accuracy front: they are timed, not ranked.
NO_PUBLISHED_ACCURACY: dict[str, str] = {
    name: "no CPUBone row in timm's results-imagenet.csv at the commit data/accuracy.csv cites"
    for name in ("cpubone_nano", "cpubone_t0", "cpubone_s0", "cpubone_b0_bfrobust")
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
