"""torch.hub entry points: ``torch.hub.load("<owner>/mobilebone", "mobileone_s0", pretrained=False)``.

One entry point per registered architecture, each building the model only when called (keyword arguments
as ``mobilebone.create_model``). Works from a clone with ``source="local"``; the package is imported from
``src/`` when it is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

dependencies = ["torch"]

_SRC = Path(__file__).resolve().parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from mobilebone import create_model, list_models  # noqa: E402  (after the src/ path is known)


def _entry(name: str) -> Any:
    def build(pretrained: bool = False, **kwargs: Any) -> Any:
        return create_model(name, pretrained=pretrained, **kwargs)

    build.__name__ = name
    build.__doc__ = f"{name} (mobilebone.create_model({name!r}, pretrained=..., **kwargs))."
    return build


for _name in list_models():
    globals()[_name] = _entry(_name)
