"""``deploy``'s candidates: the entries of the one runtime table (``mobilebone.analysis.runtimes.RUNTIMES``)
that run on the CPU and build a deployable artifact. Adding a deploy runtime is adding one entry there."""

from __future__ import annotations

from mobilebone.analysis.runtimes import RuntimeSpec, deploy_runtimes

DEPLOY_RUNTIMES: tuple[RuntimeSpec, ...] = tuple(deploy_runtimes())
DEPLOY_RUNTIME_NAMES = tuple(r.name for r in DEPLOY_RUNTIMES)


def get_runtime(name: str) -> RuntimeSpec:
    """The deploy candidate called ``name``; ``ValueError`` naming the choices otherwise."""
    for runtime in deploy_runtimes():
        if runtime.name == name:
            return runtime
    raise ValueError(f"unknown deploy runtime {name!r}; choose from {', '.join(DEPLOY_RUNTIME_NAMES)}")
