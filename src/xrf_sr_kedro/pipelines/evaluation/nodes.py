"""Evaluation nodes: each one call into :mod:`xrf_sr_kedro.evaluation` (see
docs/evaluation.md for what is computed)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from xrf_sr_kedro.evaluation import controls, experiments, natural_images, projections, report, tuning
from xrf_sr_kedro.evaluation.scoring import MetricSettings as _MetricSettings
from xrf_sr_kedro.inference.refine import RefinementSettings
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.tomo.recon import ReconSettings
from xrf_sr_kedro.types import PatchPairs, ProbeIntensity, Volume, XRFStack

logger = logging.getLogger(__name__)

MetricSettings = validated(_MetricSettings)
ProjectionSettings = validated(projections.ProjectionSettings)
TVTuning = validated(tuning.TVTuning)
ReconParams = validated(ReconSettings)
VolumeParams = validated(controls.VolumeSettings)
RefinementParams = validated(RefinementSettings)


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
    fine_tuned_model: dict[str, Any],
    probe_intensity: ProbeIntensity,
    truth_volume: Volume,
    tv_weight: float,
    settings: ProjectionSettings,
    metrics: MetricSettings,
    refinement: RefinementParams,
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """2-D comparison of every method with the truth projections, on the truth's grid
    (with the refinement's effect on the selected output: ``selected_refined``)."""
    return projections.evaluate_projection_methods(
        truth_projections, raw_xrf, enhanced_xrf,
        {"pretrained": pretrained_model, "fine_tuned": fine_tuned_model}, probe_intensity,
        truth_volume.metadata.get("features", []), tv_weight, settings, metrics, refinement,
    )


def score_on_natural_images(
    pretrained_model: dict[str, Any], fine_tuned_model: dict[str, Any], natural_pairs: PatchPairs
) -> tuple[pd.DataFrame, dict[str, list[dict[str, float]]]]:
    """Both networks on unseen natural images at the pretraining dose, against bicubic (dB)."""
    return natural_images.score_on_natural_images(
        {"pretrained": pretrained_model, "fine_tuned": fine_tuned_model}, natural_pairs)


def tune_raw_reconstruction(
    truth_volume: Volume, raw_xrf: XRFStack, probe_intensity: ProbeIntensity, element: str,
    recon: ReconParams, volumes_settings: VolumeParams, metrics: MetricSettings,
) -> tuple[dict[str, float], pd.DataFrame]:
    """OSPML ``n_iter`` / ``reg_par`` of ``raw_best_iterations``, chosen on another simulated
    sample at the evaluation geometry (never the evaluation truth)."""
    return controls.tune_raw_reconstruction(truth_volume, raw_xrf, probe_intensity, element, recon,
                                            volumes_settings, metrics)


def oracle_raw_sweep(
    truth_volume: Volume, raw_xrf: XRFStack, element: str, recon: ReconParams, volumes_settings: VolumeParams,
    metrics: MetricSettings,
) -> pd.DataFrame:
    """The same sweep against the evaluation truth: an oracle, for the report only."""
    return controls.oracle_raw_sweep(truth_volume, raw_xrf, element, recon, volumes_settings, metrics)


def raw_best_iterations(
    raw_xrf: XRFStack, choice: dict[str, float], element: str, recon: ReconParams, volumes_settings: VolumeParams,
) -> Volume:
    """Raw OSPML of the slab with the tuned iterations and ``reg_par``."""
    return controls.best_raw_volume(raw_xrf, choice, element, recon, volumes_settings.slab_nm)


def bicubic_reprojections(
    raw_reprojections: XRFStack, truth_volume: Volume, element: str, recon: ReconParams,
    volumes_settings: VolumeParams,
) -> Volume:
    """The reprojections upsampled bicubically to the truth's voxel size and reconstructed."""
    scale = round(raw_reprojections.pixel_size_nm / truth_volume.voxel_size_nm)
    return controls.bicubic_reprojections_volume(raw_reprojections, volumes_settings.slab_nm, scale, element, recon)


def enhanced_measured(
    enhanced_xrf: XRFStack, element: str, recon: ReconParams, volumes_settings: VolumeParams
) -> Volume:
    """The measured projections enhanced directly by the network, reconstructed at the fine voxel size."""
    return controls.fine_stack_volume(enhanced_xrf, volumes_settings.slab_nm, element, recon)


def tv_deconvolution_volume(
    raw_xrf: XRFStack, probe_intensity: ProbeIntensity, tv_weight: float, truth_volume: Volume,
    settings: ProjectionSettings, recon: ReconParams, volumes_settings: VolumeParams,
) -> Volume:
    """Each measured projection TV-deconvolved with the tuned weight, reconstructed at the fine voxel size."""
    scale = round(raw_xrf.pixel_size_nm / truth_volume.voxel_size_nm)
    return controls.tv_deconvolution_volume(
        raw_xrf, probe_intensity, tv_weight, volumes_settings.slab_nm, scale, settings.element,
        settings.tv_iterations, settings.fast_axis, recon,
    )


def evaluate_volumes(
    truth_volume: Volume,
    raw_volume: Volume,
    enhanced_volume: Volume,
    limited_projection_volume: Volume,
    element: str,
    metrics: MetricSettings,
    volumes_settings: VolumeParams,
    **volumes: Volume,
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """3-D rows on the shared slab: FSC (all, axial, equatorial), Rayleigh and the
    independent split halves (``volumes``: ``even_raw``, ``odd_raw``, ``even_more_angles``,
    ``odd_more_angles``, ``even_limited``, ``odd_limited``) for every experiment and control
    (``volumes``: one per name of ``experiments.CONTROLS_270``)."""
    return experiments.evaluate_tomography_rows(
        truth_volume, raw_volume, enhanced_volume, limited_projection_volume,
        experiments.SplitHalves.from_named(volumes), {m: volumes[m] for m in experiments.CONTROLS_270},
        volumes_settings.slab_nm, element, metrics,
    )


def build_report(
    projection_results: pd.DataFrame,
    projection_figures: dict[str, Figure],
    volume_results: pd.DataFrame,
    volume_figures: dict[str, Figure],
    threshold: str,
    tv_tuning_table: pd.DataFrame,
    raw_recon_tuning_table: pd.DataFrame,
    raw_recon_oracle_table: pd.DataFrame,
    natural_image_scores: pd.DataFrame,
) -> tuple[pd.DataFrame, str, str, dict[str, Figure], dict[str, list[dict[str, float]]]]:
    """The results table (CSV, Markdown), the HTML report, the figures and MLflow metrics."""
    return report.build_report(
        projection_results, projection_figures, volume_results, volume_figures, threshold, tv_tuning_table,
        raw_recon_tuning_table, raw_recon_oracle_table, natural_image_scores,
    )
