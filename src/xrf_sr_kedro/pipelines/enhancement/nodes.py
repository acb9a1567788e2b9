"""Enhancement nodes: 4x enhancement of measured maps and its data-consistency check."""

from __future__ import annotations

from typing import Any, Literal

from matplotlib.figure import Figure

from xrf_sr_kedro.inference.consistency import consistency_report
from xrf_sr_kedro.inference.refine import RefinementSettings, refine_if_enabled
from xrf_sr_kedro.inference.stack import EngineSettings, enhance_with_checkpoint
from xrf_sr_kedro.physics.dose import SHOWN_MAX_COUNTS, SHOWN_MIN_COUNTS
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

EngineParams = validated(EngineSettings)
RefinementParams = validated(RefinementSettings)


@validated
class ConsistencyParams:
    """How the enhanced maps are degraded again for the consistency check, and the
    low-count guard: the dose range (counts per pixel) where enhancement was shown to
    help, and the residual / Poisson-level ratio above which the maps disagree."""

    fast_axis: Literal["x", "y"] = "x"
    mode: Literal["fly", "step"] = "fly"
    n_example_maps: int = 3
    shown_min_counts: float | None = SHOWN_MIN_COUNTS
    shown_max_counts: float | None = SHOWN_MAX_COUNTS
    residual_tolerance: float = 1.5


def enhance(
    stack: XRFStack,
    checkpoint: dict[str, Any],
    probe_intensity: ProbeIntensity,
    engine: EngineParams,
) -> XRFStack:
    """Enhance every map of ``stack`` with the network in ``checkpoint`` (total signal conserved)."""
    return enhance_with_checkpoint(stack, checkpoint, probe_intensity, engine)


def refine(
    enhanced: XRFStack,
    measured: XRFStack,
    probe_intensity: ProbeIntensity,
    refinement: RefinementParams,
) -> XRFStack:
    """Optional Poisson-likelihood refinement through the fly-scan operator, anchored
    to the network output; a pass-through when ``refinement.enabled`` is false."""
    return refine_if_enabled(enhanced, measured, probe_intensity, refinement)


def check_consistency(
    measured: XRFStack,
    enhanced: XRFStack,
    probe_intensity: ProbeIntensity,
    consistency: ConsistencyParams,
) -> tuple[dict[str, list[dict[str, float]]], dict[str, Figure]]:
    """MLflow metrics and before / after / residual figures of the re-degraded enhanced maps."""
    return consistency_report(
        measured, enhanced, probe_intensity, fast_axis=consistency.fast_axis,
        mode=consistency.mode, n_example_maps=consistency.n_example_maps,
        shown_min_counts=consistency.shown_min_counts,
        shown_max_counts=consistency.shown_max_counts,
        residual_tolerance=consistency.residual_tolerance,
    )
