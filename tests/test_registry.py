"""The registry: metadata on every entry (family, kind, recipe, converters, weight tags), read without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from mobilebone import create_model
from mobilebone.registry import KINDS, entries, get_entry, resolve

SRC = Path(__file__).resolve().parents[1] / "src" / "mobilebone"
HEAVY = ("torch", "torchvision", "numpy", "onnx", "onnxruntime", "PIL", "safetensors", "timm")


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_names_and_metadata_import_no_heavy_library() -> None:
    out = _run(
        "import sys\n"
        "import mobilebone\n"
        "from mobilebone.registry import entries, list_models, pretrained_cfg\n"
        "from mobilebone.checkpoints.tags import all_tags, default_tag\n"
        "assert len(list_models()) == 10 and len(list_models(pretrained=True)) == len(all_tags())\n"
        "for e in entries():\n"
        "    e.kind, e.recipe, e.converters, [t.cfg() for t in e.tags]\n"
        "pretrained_cfg('mobilenetv4_conv_medium.e180_r384_in12k')\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    assert out.strip() == "[]"


def test_heavy_names_stay_importable_from_the_package() -> None:
    import mobilebone

    assert callable(mobilebone.create_model) and callable(mobilebone.load_checkpoint)
    assert "reparameterize_model" in dir(mobilebone)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        mobilebone.nonexistent  # noqa: B018


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.name)
def test_kind_is_what_the_built_network_contains(entry) -> None:  # type: ignore[no-untyped-def]
    from torch import nn

    model = entry.build(num_classes=0)
    # Attention is told by its modules, not by the name: a softmax over tokens needs a q/k/v projection.
    attention = any(
        isinstance(m, nn.MultiheadAttention) or type(m).__name__.endswith("Attention2d")
        for m in model.modules()
    )
    assert entry.kind in KINDS
    assert entry.kind == ("hybrid" if attention else "convnet")


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.name)
def test_recipe_converters_and_tags_are_consistent(entry) -> None:  # type: ignore[no-untyped-def]
    from mobilebone.training.config import RECIPES

    assert entry.recipe in RECIPES and entry.recipe != "embedded"
    for layout, converter in entry.converters.items():
        assert layout in ("apple", "timm") and callable(resolve(converter)), (layout, converter)
    assert all(tag.arch == entry.name for tag in entry.tags)
    assert entry.tags, "every registered model has published weights"


def test_only_mobileone_takes_apple_checkpoints() -> None:
    assert "apple" in get_entry("mobileone_s0").converters
    assert "apple" not in get_entry("mobilenetv4_conv_small").converters


def test_tag_class_count_is_the_default_as_in_timm() -> None:
    timm = pytest.importorskip("timm")
    name = "mobilenetv4_conv_medium.e180_r384_in12k"
    theirs = timm.create_model(name, pretrained=False).num_classes
    assert theirs != 1000
    assert create_model(name).num_classes == theirs
    assert create_model(name).pretrained_cfg["num_classes"] == theirs
    assert create_model(name, num_classes=10).num_classes == 10  # an explicit count wins
    assert create_model("mobilenetv4_conv_medium").num_classes == 1000


def _imports(path: Path) -> set[str]:
    """Every ``mobilebone.*`` module a file imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("mobilebone")}


def test_checkpoints_never_import_the_factory() -> None:
    # factory → checkpoints (pretrained loading) is the one direction; checkpoints build through the registry.
    offenders = {
        str(p.relative_to(SRC)): sorted(i for i in _imports(p) if i.startswith("mobilebone.factory"))
        for p in (SRC / "checkpoints").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_registry_imports_only_the_torch_free_declarations() -> None:
    allowed = {"mobilebone.models", "mobilebone.registry"}
    assert _imports(SRC / "registry.py") <= allowed
    for path in [SRC / "models" / "mobileone_cfgs.py", SRC / "models" / "mobilenetv4" / "cfgs.py"]:
        assert all(
            not i.startswith(("mobilebone.layers", "mobilebone.models.contract")) for i in _imports(path)
        )
