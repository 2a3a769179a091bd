"""The package layering the README states: every ``import mobilebone.X`` points down this order."""

from __future__ import annotations

import ast
from pathlib import Path

import mobilebone

# Rank of each top-level module or package; a module may import only ranks <= its own. The package's
# own ``__init__`` (lazy re-exports) and ``__main__`` stand outside the order.
ORDER: dict[str, int] = {
    **dict.fromkeys(("limits", "numerics", "timing", "atomic", "transforms", "testing"), 0),
    "reparam": 1,
    "layers": 2,
    "models": 3,
    "registry": 3,  # loads the torch-free models/*cfgs.py declarations
    "checkpoints": 4,
    "factory": 5,
    "hub_publish": 5,
    "export": 6,
    "backends": 7,
    "analysis": 8,
    **dict.fromkeys(("studies", "training", "deploy"), 9),
    "tasks": 10,
    "cli": 11,
}
OUTSIDE = {"__init__", "__main__"}
ROOT = Path(mobilebone.__file__).parent


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mobilebone":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> list[tuple[str, str, str]]:
    """(importing unit, imported unit, file) for every absolute import inside the package."""
    found = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        unit = rel.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                target = _unit(name)
                if target and target != unit:
                    found.append((unit, target, str(rel)))
    return found


def test_every_module_has_a_rank() -> None:
    units = {
        p.name.removesuffix(".py")
        for p in ROOT.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    assert units - OUTSIDE - {"py"} <= set(ORDER), sorted(units - OUTSIDE - set(ORDER))


def test_imports_point_down_the_stated_order() -> None:
    upward = [
        f"{file}: {unit} imports {target}"
        for unit, target, file in _imports()
        if unit not in OUTSIDE and target not in OUTSIDE and ORDER[target] > ORDER[unit]
    ]
    assert not upward, "\n".join(sorted(set(upward)))
