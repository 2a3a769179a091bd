"""``search``: build every available runtime × precision, verify each against PyTorch float32 on held-out
images, time every built one interleaved in one process, and choose the fastest verified one."""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from mobilebone.analysis.runtimes import RuntimeSpec, deploy_runtimes, torch_threads
from mobilebone.backends.engine import Engine, logits_of
from mobilebone.deploy.report import (
    CHOSEN,
    EAGER,
    PASSED,
    REJECTED,
    UNAVAILABLE,
    CandidateResult,
    DeployReport,
    copy_artifacts,
)
from mobilebone.deploy.runtimes import get_runtime
from mobilebone.timing import round_minima


def _rtol(runtime: RuntimeSpec) -> float:
    """The candidate's parity tolerance (every buildable entry has one; eager, the reference, has none)."""
    return runtime.rtol if runtime.rtol is not None else 0.0


def verify(
    runtime: RuntimeSpec, engine: Engine, held_out: Tensor, reference: Tensor, max_agreement_drop: float
) -> CandidateResult:
    """Compare ``engine`` with the float32 logits ``reference`` on ``held_out``: passed, or rejected with why."""
    from mobilebone.numerics import max_relative_error

    result = CandidateResult(
        runtime.name, engine.precision or runtime.precision, runtime.help, PASSED, _rtol(runtime)
    )
    result.artifacts = [str(p) for p in engine.artifacts]
    result.info = dict(engine.info)
    logits = logits_of(engine, held_out)
    agree = int((logits.argmax(1) == reference.argmax(1)).sum())
    result.top1_agreement = agree / len(reference)
    errors = [max_relative_error(logits[i].double(), reference[i].double()) for i in range(len(reference))]
    result.max_relative_error = max(errors)
    result.median_relative_error = statistics.median(errors)
    error = result.median_relative_error if runtime.error_statistic == "median" else result.max_relative_error
    # From counts: 100 * (1 - 0.995) is 0.5000000000000004, which would fail a 0.5-point limit.
    drop = 100 * (len(reference) - agree) / len(reference)
    if not error <= _rtol(runtime):
        result.status = REJECTED
        result.error = (
            f"{runtime.error_statistic} relative logit error {error:.1e} > tolerance {_rtol(runtime):.0e}"
        )
    elif not drop <= max_agreement_drop:
        result.status = REJECTED
        result.error = f"top-1 agreement drops by {drop:.2f} points > {max_agreement_drop:g}"
    return result


def _resolve(runtimes: Sequence[str | RuntimeSpec] | None) -> list[RuntimeSpec]:
    if runtimes is None:
        return deploy_runtimes()
    specs = [r if isinstance(r, RuntimeSpec) else get_runtime(r) for r in runtimes]
    for spec in specs:
        if spec.build is None:
            raise ValueError(f"runtime {spec.name!r} builds no deployable artifact; it cannot be a candidate")
    return specs


def search(
    model: nn.Module,
    held_out_images: Tensor,
    calibration_images: Tensor,
    *,
    runtimes: Sequence[str | RuntimeSpec] | None = None,
    max_agreement_drop: float = 0.5,
    threads: int | None = None,
    rounds: int = 20,
    runs_per_round: int = 5,
    out: str | Path | None = None,
    model_name: str = "",
    weights: str = "random init",
    held_out: str = "",
    calibration: str = "",
    notes: Sequence[str] = (),
    references: dict[str, Callable[[], object]] | None = None,
) -> DeployReport:
    """Every candidate of ``runtimes`` (default: all) built, verified and timed; the fastest verified one chosen.

    ``model`` is fused first (``mobilebone.export.prepare_for_export``). Candidates are compared with its
    float32 PyTorch logits on ``held_out_images``: one passes when its top-1 agreement drops by at most
    ``max_agreement_drop`` percentage points and its max relative logit error is within its runtime's
    tolerance. With ``out``, the report and the chosen candidate's files are written there. ``references``
    are extra zero-argument calls (e.g. another library's model) timed in the same interleaved rounds.
    """
    from mobilebone.analysis.environment import capture_environment
    from mobilebone.export.prepare import prepare_for_export

    if held_out_images.ndim != 4 or len(held_out_images) < 1:
        raise ValueError(
            f"held_out_images must be a non-empty (N, C, H, W) batch, got {tuple(held_out_images.shape)}"
        )
    if calibration_images.ndim != 4 or len(calibration_images) < 2:
        raise ValueError("calibration_images must be an (N, C, H, W) batch of at least 2 images")
    if max_agreement_drop < 0:
        raise ValueError(f"max_agreement_drop must be >= 0, got {max_agreement_drop}")
    threads = threads or torch.get_num_threads()
    specs = _resolve(runtimes)
    deploy = prepare_for_export(model)
    x = held_out_images[:1].contiguous()
    results: list[CandidateResult] = []
    engines: dict[str, Engine] = {}
    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="mobilebone-deploy-") as work:
        with torch.inference_mode():
            reference = torch.cat([deploy(held_out_images[i : i + 1]) for i in range(len(held_out_images))])
        for spec in specs:
            if not spec.available():
                results.append(
                    CandidateResult(
                        spec.name,
                        spec.precision,
                        spec.help,
                        UNAVAILABLE,
                        _rtol(spec),
                        error=f"not available here ({spec.install})",
                    )
                )
                continue
            try:
                assert spec.build is not None  # _resolve keeps only entries that build
                engine = spec.build(deploy, x, calibration_images, threads, Path(work))
                result = verify(spec, engine, held_out_images, reference, max_agreement_drop)
            except Exception as err:  # a candidate that cannot be built is a result, not a crash
                results.append(
                    CandidateResult(
                        spec.name,
                        spec.precision,
                        spec.help,
                        REJECTED,
                        _rtol(spec),
                        error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                    )
                )
                continue
            results.append(result)
            # Rejected-but-built candidates are timed too (what their speed would have been), never chosen.
            engines[spec.name] = engine
        calls = {name: (lambda e=e: e.infer(x)) for name, e in engines.items()}

        def eager() -> object:
            with torch.inference_mode():
                return deploy(x)

        extra = {EAGER: eager, **(references or {})}
        minima = round_minima({**calls, **extra}, rounds=rounds, runs_per_round=runs_per_round)
        for result in results:
            if result.runtime in minima:
                result.round_minima_ms = minima[result.runtime]
                result.median_ms = statistics.median(result.round_minima_ms)
        passed = [r for r in results if r.verified and math.isfinite(r.median_ms)]
        if passed:
            min(passed, key=lambda r: r.median_ms).status = CHOSEN
        results.sort(key=_order)
        report = DeployReport(
            model=model_name or type(model).__name__,
            input_size=(int(x.shape[-2]), int(x.shape[-1])),
            threads=threads,
            max_agreement_drop=max_agreement_drop,
            weights=weights,
            held_out=held_out or "given images",
            calibration=calibration or "given images",
            num_held_out=len(held_out_images),
            fp32_distinct_top1=len(set(reference.argmax(1).tolist())),
            candidates=results,
            references_ms={name: statistics.median(minima[name]) for name in extra},
            environment=capture_environment(threads, runtime="deploy search"),
            notes=list(notes),
        )
        if out is not None:
            chosen = report.chosen
            if chosen is not None:
                chosen.artifacts = [str(p) for p in copy_artifacts(chosen, out)]
            report.write(out)
    return report


def _order(result: CandidateResult) -> tuple[int, float]:
    rank = {CHOSEN: 0, PASSED: 1, REJECTED: 2, UNAVAILABLE: 3}[result.status]
    return rank, result.median_ms if math.isfinite(result.median_ms) else math.inf
