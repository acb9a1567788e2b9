"""Preparation nodes: rotation centre and projection alignment of a measured stack, and the
report of a real-data run."""

from __future__ import annotations

import logging
from typing import Literal

from matplotlib.figure import Figure

from xrf_sr_kedro.evaluation.real_data_report import real_data_report
from xrf_sr_kedro.io.chunked import ChunkedStack
from xrf_sr_kedro.metrics.preparation_plots import preparation_figures
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.tomo.prepare import PreparationResult, prepare_stack
from xrf_sr_kedro.types import ProbeIntensity, Volume, XRFStack

logger = logging.getLogger(__name__)


@validated
class PreparationParams:
    """``preparation`` parameters (conf/base/parameters_preparation.yml).

    ``centre``: ``auto`` (found) or a fixed offset, px (rotation axis minus detector
    centre); ``align``: correct per-projection shifts; ``reference_element``: the
    element the centre and shifts are found on (null: the one with most counts);
    ``n_iter``: alignment iterations; ``recon_iter``: reconstruction iterations in
    each; ``tol_px``: stop when no shift changes by more than this.
    """

    centre: Literal["auto"] | float = "auto"
    align: bool = True
    reference_element: str | None = None
    n_iter: int = 10
    recon_iter: int = 20
    tol_px: float = 0.1


def prepare_projections(measured: XRFStack, preparation: PreparationParams) -> PreparationResult:
    """Find the centre, align on the reference element, find the centre again."""
    return prepare_stack(
        measured, preparation.reference_element, preparation.centre, preparation.align,
        preparation.n_iter, preparation.recon_iter, preparation.tol_px,
    )


def prepared_stack(result: PreparationResult) -> XRFStack:
    """The aligned stack (centre and shifts in its metadata), for the catalog."""
    return result.stack


def plot_preparation(result: PreparationResult) -> dict[str, Figure]:
    """Trial-centre images, shifts per angle, sinogram before/after."""
    return preparation_figures(result)


def report_raw_run(
    result: PreparationResult,
    measured: XRFStack,
    raw_volume: Volume,
    shown_min_counts: float | None,
    shown_max_counts: float | None,
    residual_tolerance: float,
) -> str:
    """Markdown report of ``real_data_raw``: centre, alignment, I0, dose vs the shown range."""
    return real_data_report(result, measured, raw_volume, shown_min_counts, shown_max_counts,
                            residual_tolerance)


def report_enhanced_run(
    result: PreparationResult,
    measured: XRFStack,
    raw_volume: Volume,
    reprojections: XRFStack,
    enhanced_reprojections: XRFStack | ChunkedStack,
    enhanced_volume: Volume,
    probe_intensity: ProbeIntensity,
    shown_min_counts: float | None,
    shown_max_counts: float | None,
    residual_tolerance: float,
    fast_axis: Literal["x", "y"],
    mode: Literal["fly", "step"],
) -> str:
    """Markdown report of ``real_data``: the raw run's report plus the consistency residual."""
    return real_data_report(
        result, measured, raw_volume, shown_min_counts, shown_max_counts, residual_tolerance,
        reprojections=reprojections, enhanced_reprojections=enhanced_reprojections,
        enhanced_volume=enhanced_volume, probe_intensity=probe_intensity,
        fast_axis=fast_axis, mode=mode,
    )
