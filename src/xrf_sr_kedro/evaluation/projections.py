"""2-D evaluation: every method on the same measured projections, against the truth.

Methods (all from the same raw 30 nm projections, compared on the truth's 7.5 nm grid):
``raw`` (nearest-neighbour, the measurement as it is), ``bicubic``,
``richardson_lucy`` and ``tv_deconvolution`` (classical, through the exact fly-scan
operator), ``pretrained`` and ``fine_tuned`` (each network run on the projections here,
plus any ablation checkpoints) and ``selected`` (the enhancement pipeline's output: the
network chosen on the validation region, refined when refinement is on) and, when the
pipeline ran with refinement off, ``selected_refined``: the same output refined here
with the configured anchor weight and iterations, so the table shows the refinement's
effect on and off on the same projections.  PSNR, SSIM and the FRC resolutions are medians over
``n_projections_2d`` evenly spaced projections; the Rayleigh test uses the projection
closest to 0 degrees, where the rays run along the calibration rows and the pairs
are seen at their full separation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from xrf_sr_kedro.baselines import (
    bicubic_upsample,
    nearest_upsample,
    richardson_lucy_sr,
    tv_deconvolution_sr,
)
from xrf_sr_kedro.evaluation.scoring import (
    MetricSettings,
    first_populated_shell,
    matched_units,
    resolved_pairs,
    score_against_truth,
)
from xrf_sr_kedro.evaluation.table import make_row, results_table
from xrf_sr_kedro.inference.engine import enhance_maps
from xrf_sr_kedro.inference.refine import RefinementSettings, refine_stack, was_refined
from xrf_sr_kedro.io.checkpoint import load_checkpoint, model_from_checkpoint
from xrf_sr_kedro.metrics.image import match_intensity
from xrf_sr_kedro.metrics.plots import plot_fsc, plot_side_by_side
from xrf_sr_kedro.metrics.resolution import FeaturePair, pairs_from_features, project_pair
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

logger = logging.getLogger(__name__)

__all__ = [
    "ProjectionSettings",
    "evaluate_projection_methods",
    "load_models",
    "projection_estimates",
    "calibration_pairs_2d",
    "evaluate_projections",
    "refinement_counterpart",
]


_DIRECTIONAL_METHODS = ("raw", "tv_deconvolution", "pretrained", "fine_tuned", "selected", "selected_refined")


@dataclass(frozen=True)
class ProjectionSettings:
    """What the 2-D comparison runs (one source for the defaults)."""

    element: str = "Zn_K"
    n_projections_2d: int = 7
    rl_iterations: int = 30
    tv_iterations: int = 200
    fast_axis: Literal["x", "y"] = "x"
    ablation_checkpoints: dict[str, str] | None = None  # evaluated when the file exists


def load_models(
    checkpoints: dict[str, dict[str, Any]], ablation_checkpoints: dict[str, str] | None
) -> dict[str, torch.nn.Module]:
    """The named networks (``pretrained``, ``fine_tuned``) plus every ablation checkpoint
    file that exists."""
    models = {name: model_from_checkpoint(checkpoint) for name, checkpoint in checkpoints.items()}
    for name, path in (ablation_checkpoints or {}).items():
        if Path(path).exists():
            models[name] = model_from_checkpoint(load_checkpoint(path))
        else:
            logger.info("Ablation '%s' skipped: no checkpoint at %s", name, path)
    return models


def projection_estimates(
    raw: np.ndarray,
    scale: int,
    probe_hr: np.ndarray,
    models: dict[str, torch.nn.Module],
    selected: np.ndarray,
    tv_weight: float,
    settings: ProjectionSettings,
) -> dict[str, np.ndarray]:
    """Every method's estimate of the ``(n, h, w)`` raw maps on the fine grid."""
    estimates = {
        "raw": nearest_upsample(raw, scale),
        "bicubic": bicubic_upsample(raw, scale),
        "richardson_lucy": richardson_lucy_sr(
            np.clip(raw, 0, None), probe_hr, scale, n_iter=settings.rl_iterations, fast_axis=settings.fast_axis
        ),
        "tv_deconvolution": tv_deconvolution_sr(
            raw, probe_hr, scale, tv_weight, n_iter=settings.tv_iterations, fast_axis=settings.fast_axis
        ),
    }
    for name, model in models.items():
        estimates[name] = enhance_maps(
            model, raw, scale=scale, probe_intensity=probe_hr, fast_axis=settings.fast_axis
        ).data
    estimates["selected"] = selected
    return estimates


def refinement_counterpart(
    selected: XRFStack, raw: XRFStack, probe_intensity: ProbeIntensity, refinement: RefinementSettings | None
) -> np.ndarray | None:
    """The pipeline's output refined here (``selected_refined``), when the pipeline ran
    with refinement off; ``None`` when it ran with refinement on (its output is then
    the refined one) or ``refinement`` is not given.

    ``selected`` and ``raw`` hold the same frames of one element; the result is
    ``selected.data[0]`` refined with ``refinement``'s anchor weight and iterations.
    """
    if refinement is None:
        return None
    if was_refined(selected):
        logger.info("2-D table: the selected output is already refined; no 'selected_refined' row")
        return None
    refined = refine_stack(selected, raw, probe_intensity, refinement.anchor_weight, refinement.n_iter,
                           fast_axis=refinement.fast_axis, mode=refinement.mode)
    return refined.data[0]


def calibration_pairs_2d(features: list[dict], angle_deg: float, width_nm: float) -> list[FeaturePair]:
    """The phantom's pairs as seen in the projection at ``angle_deg`` (nm on the detector)."""
    return [project_pair(p, angle_deg, width_nm) for p in pairs_from_features(features)]


def _closest_to_zero(angles_deg: np.ndarray) -> int:
    folded = (np.asarray(angles_deg) + 90.0) % 180.0 - 90.0
    return int(np.argmin(np.abs(folded)))


def _band_rows(pairs: list[FeaturePair], pixel_size_nm: float, n_rows: int) -> slice:
    if not pairs:
        return slice(0, n_rows)
    z = [c[0] for p in pairs for c in (p.centre_a_nm, p.centre_b_nm)]
    margin = 1.5 * max(p.separation_nm for p in pairs) + max(p.half_length_nm for p in pairs)
    lo = max(int((min(z) - margin) / pixel_size_nm), 0)
    hi = min(int(math.ceil((max(z) + margin) / pixel_size_nm)), n_rows)
    return slice(lo, hi)


def evaluate_projections(
    truth_projections: XRFStack,
    raw_xrf: XRFStack,
    enhanced_xrf: XRFStack,
    models: dict[str, torch.nn.Module],
    probe_intensity: ProbeIntensity,
    features: list[dict],
    tv_weight: float,
    settings: ProjectionSettings,
    metrics: MetricSettings,
    refinement: RefinementSettings | None = None,
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """The 2-D method table and its figures (FRC curves, calibration band, panels);
    with ``refinement``, also the ``selected_refined`` row (:func:`refinement_counterpart`)."""
    element = settings.element
    px = truth_projections.pixel_size_nm
    scale = round(raw_xrf.pixel_size_nm / px)
    truth_all = truth_projections.select_elements([element]).data[0]
    frames = np.unique(np.linspace(0, raw_xrf.n_frames - 1, settings.n_projections_2d).astype(int))
    zero = _closest_to_zero(raw_xrf.angles_deg)
    used = np.unique(np.append(frames, zero))
    probe = resample_probe(probe_intensity, px)
    raw_used = raw_xrf.select_elements([element]).select_frames(used)
    selected_used = enhanced_xrf.select_elements([element]).select_frames(used)
    estimates = projection_estimates(
        raw_used.data[0], scale, probe.intensity, models, selected_used.data[0], tv_weight, settings,
    )
    refined = refinement_counterpart(selected_used, raw_used, probe, refinement)
    if refined is not None:
        estimates["selected_refined"] = refined
    truth = truth_all[used]
    pairs = calibration_pairs_2d(features, float(raw_xrf.angles_deg[zero]), truth.shape[-1] * px)
    at_zero, in_frames = int(np.flatnonzero(used == zero)[0]), np.isin(used, frames)
    experiment = f"projections, {raw_xrf.pixel_size_nm:.0f} nm -> {px:.1f} nm"
    rows, curves, directional = [], {}, {}
    for method, estimate in estimates.items():
        scored = [score_against_truth(e, t, px, metrics) for e, t in zip(estimate[in_frames], truth[in_frames])]
        values = {k: float(np.median([v[k] for v, _ in scored])) for k in scored[0][0]}
        values["finest_resolved_pair_nm"] = resolved_pairs(estimate[at_zero], px, pairs, metrics)[0]
        rows.append(make_row(experiment, method, "2D", **values))
        middle = scored[len(scored) // 2][1]
        curves[method] = middle["all"]
        if method in _DIRECTIONAL_METHODS:
            directional |= {f"{method} {d}": middle[d] for d in ("axial", "equatorial")}
    band = _band_rows(pairs, px, truth.shape[-2])
    panels = {"truth": truth[at_zero][band]} | {
        m: match_intensity(e[at_zero], truth[at_zero])[band] for m, e in estimates.items()
    }
    angle = float(raw_xrf.angles_deg[zero])
    figures = {
        "projections_frc_vs_truth.png": plot_fsc(
            curves, f"{element}: FRC against the truth (projection {used[len(used) // 2]})", metrics.threshold
        ),
        "projections_frc_directional.png": plot_fsc(
            directional, f"{element}: FRC along (axial) and across (equatorial) the rotation axis",
            metrics.threshold,
            min_shells={k: first_populated_shell(t, metrics.min_shell_voxels) for k, t in directional.items()},
        ),
        "projections_calibration_band.png": plot_side_by_side(
            panels, f"{element}: calibration band, projection at {angle:.0f} deg",
            pixel_sizes_nm={k: px for k in panels}, ncols=4, units=matched_units(truth_projections.units),
        ),
    }
    return results_table(rows), figures


def evaluate_projection_methods(
    truth_projections: XRFStack,
    raw_xrf: XRFStack,
    enhanced_xrf: XRFStack,
    checkpoints: dict[str, dict[str, Any]],
    probe_intensity: ProbeIntensity,
    features: list[dict],
    tv_weight: float,
    settings: ProjectionSettings,
    metrics: MetricSettings,
    refinement: RefinementSettings | None = None,
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """:func:`evaluate_projections` with the networks (``{"pretrained": checkpoint,
    "fine_tuned": checkpoint}``) loaded from their checkpoints."""
    models = load_models(checkpoints, settings.ablation_checkpoints)
    return evaluate_projections(truth_projections, raw_xrf, enhanced_xrf, models, probe_intensity,
                                features, tv_weight, settings, metrics, refinement)
