"""torch.hub entry points: ``torch.hub.load("<owner>/mobilebone", "mobileone_s0", pretrained=False)``.

One entry point per registered architecture; each builds its model only when called (keyword arguments
as ``mobilebone.create_model``). Works from a clone with ``source="local"``: the clone's ``src/`` comes
first on the import path, so the clone's code is what runs even where another mobilebone is installed.
"""

dependencies = ["torch"]


def _register_entry_points() -> None:
    # Everything is local to this function so that the module's only public names are the entry points.
    import sys
    from pathlib import Path
    from typing import Any

    src = Path(__file__).resolve().parent / "src"
    if src.is_dir() and str(src) not in sys.path:
        sys.path.insert(0, str(src))
    from mobilebone import create_model, list_models

    def entry(name: str) -> Any:
        def build(pretrained: bool = False, **kwargs: Any) -> Any:
            return create_model(name, pretrained=pretrained, **kwargs)

        build.__name__ = build.__qualname__ = name
        build.__doc__ = f"{name}: mobilebone.create_model({name!r}, pretrained=..., **kwargs)."
        return build

    for name in list_models():
        globals()[name] = entry(name)


_register_entry_points()
