"""Evaluation nodes: each one call into :mod:`xrf_sr_kedro.evaluation` (see
docs/evaluation.md for what is computed)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from xrf_sr_kedro.evaluation import projections, report, tuning, volumes
from xrf_sr_kedro.evaluation.scoring import MetricSettings as _MetricSettings
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.tomo.recon import ReconSettings, reconstruct_stack
from xrf_sr_kedro.types import ProbeIntensity, Volume, XRFStack

logger = logging.getLogger(__name__)

MetricSettings = validated(_MetricSettings)
ProjectionSettings = validated(projections.ProjectionSettings)
TVTuning = validated(tuning.TVTuning)
ReconParams = validated(ReconSettings)


def tune_tv_weight(
    truth_volume: Volume,
    raw_xrf: XRFStack,
    fine_tuning_coarse_xrf: XRFStack,
    fine_tuning_fine_xrf: XRFStack,
    probe_intensity: ProbeIntensity,
    settings: ProjectionSettings,
    tv_tuning: TVTuning,
) -> tuple[float, pd.DataFrame]:
    """TV weight chosen on a region disjoint from the evaluated sample: another simulated
    sample, or the fine-tuning region (``evaluation.tv_tuning.region``).  Only the
    evaluated truth's size, voxel size and seed are read, never its values."""
    return tuning.tune_tv_for_evaluation(
        truth_volume, raw_xrf, fine_tuning_coarse_xrf, fine_tuning_fine_xrf, probe_intensity,
        settings.element, settings.fast_axis, tv_tuning,
    )


def evaluate_projections(
    truth_projections: XRFStack,
    raw_xrf: XRFStack,
    enhanced_xrf: XRFStack,
    pretrained_model: dict[str, Any],
    probe_intensity: ProbeIntensity,
    truth_volume: Volume,
    tv_weight: float,
    settings: ProjectionSettings,
    metrics: MetricSettings,
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """2-D comparison of every method with the truth projections, on the truth's grid."""
    return projections.evaluate_projection_methods(
        truth_projections, raw_xrf, enhanced_xrf, pretrained_model, probe_intensity,
        truth_volume.metadata.get("features", []), tv_weight, settings, metrics,
    )


def split_half_volumes(stack: XRFStack, recon: ReconParams, element: str) -> tuple[Volume, Volume]:
    """Reconstruct ``element`` from the even- and from the odd-numbered measured
    projections separately (independent noise)."""
    stack = stack.select_elements([element])
    return (
        reconstruct_stack(stack.select_frames(slice(0, None, 2)), **asdict(recon)),
        reconstruct_stack(stack.select_frames(slice(1, None, 2)), **asdict(recon)),
    )


def evaluate_volumes(
    truth_volume: Volume,
    raw_volume: Volume,
    raw_halves: tuple[Volume, Volume],
    enhanced_volume: Volume,
    limited_projection_volume: Volume,
    element: str,
    metrics: MetricSettings,
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """3-D rows: FSC (all, axial, equatorial) and Rayleigh against the truth volume."""
    return volumes.evaluate_tomography(
        truth_volume, raw_volume, raw_halves, enhanced_volume, limited_projection_volume, element, metrics
    )


def build_report(
    projection_results: pd.DataFrame,
    projection_figures: dict[str, Figure],
    volume_results: pd.DataFrame,
    volume_figures: dict[str, Figure],
    threshold: str,
    tv_tuning_table: pd.DataFrame,
) -> tuple[pd.DataFrame, str, str, dict[str, Figure], dict[str, list[dict[str, float]]]]:
    """The results table (CSV, Markdown), the HTML report, the figures and MLflow metrics."""
    return report.build_report(
        projection_results, projection_figures, volume_results, volume_figures, threshold, tv_tuning_table
    )
