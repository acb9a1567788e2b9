"""Data consistency: enhanced maps degraded again by the forward model vs the measurement.

The check for real data without ground truth (:func:`data_consistency`) and the
metrics and before / after figures the enhancement pipeline reports
(:func:`consistency_report`).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure

from xrf_sr_kedro.inference.units import fine_pixels_per_measured_pixel, per_measured_pixel
from xrf_sr_kedro.metrics.plots import plot_before_after
from xrf_sr_kedro.physics.dose import dose_guard, estimate_dose, residual_vs_noise
from xrf_sr_kedro.physics.probe import resample_probe, unit_probe
from xrf_sr_kedro.types import ProbeIntensity, XRFStack
from xrf_sr_kedro.validation import positive_int

logger = logging.getLogger(__name__)

__all__ = ["consistency_report", "data_consistency", "noise_check"]


def noise_check(
    measured: XRFStack,
    residual: float,
    shown_min_counts: float | None = None,
    shown_max_counts: float | None = None,
    tolerance: float = 1.5,
) -> tuple[dict[str, float], list[str]]:
    """Compare a consistency residual with the Poisson noise expected at the data's dose.

    Parameters
    ----------
    measured : XRFStack
        The measured maps (their dose is estimated from the data,
        :func:`xrf_sr_kedro.physics.dose.estimate_dose`).
    residual : float
        The overall relative L2 consistency residual.
    shown_min_counts, shown_max_counts : float, optional
        Counts per pixel between which enhancement was shown to help; outside, a
        warning (:func:`xrf_sr_kedro.physics.dose.dose_guard`).
    tolerance : float
        Residual / Poisson level above which the enhanced maps disagree with the data.

    Returns
    -------
    values : dict
        ``dose_counts_per_pixel`` (where the sample is), ``poisson_expected_residual``,
        ``residual_vs_noise`` (ratio) and ``dose_outside_shown_range`` (0 or 1).
    notes : list of str
        One line each: the verdict on the residual, and the dose warning if any.
    """
    est = estimate_dose(measured.data, measured.units)
    ratio, verdict = residual_vs_noise(residual, est.expected_residual, tolerance)
    warning = None
    if shown_min_counts is not None:
        warning = dose_guard(est, shown_min_counts, shown_max_counts)
    (logger.warning if ratio > tolerance else logger.info)("Data consistency: %s", verdict)
    if warning:
        logger.warning("Low-count guard: %s", warning)
    values = {
        "dose_counts_per_pixel": est.signal_counts_per_pixel,
        "poisson_expected_residual": est.expected_residual,
        "residual_vs_noise": ratio,
        "dose_outside_shown_range": float(warning is not None),
    }
    return values, [verdict] + ([warning] if warning else [])


def data_consistency(
    measured: XRFStack,
    enhanced: XRFStack,
    probe_intensity: np.ndarray | ProbeIntensity,
    step_px: int,
    fast_axis: Literal["x", "y"] = "x",
    mode: str = "fly",
) -> dict[str, Any]:
    """How well the enhanced maps, degraded again, reproduce the measured maps.

    The enhanced maps are passed through the fly-scan forward model
    (:func:`xrf_sr_kedro.physics.flyscan.flyscan`) with the probe and step of the
    measurement and compared with the measured maps.  An enhanced stack in counts
    per fine pixel (:mod:`xrf_sr_kedro.inference.units`) is first brought to counts
    per measured pixel (times ``step_px**2``), since the forward model with a
    unit-sum probe averages; a stack without that record (e.g. a truth map) is
    taken as it is.  This is the check for real
    data without ground truth: a trustworthy enhancement leaves a residual at the
    noise level and no structure.

    Parameters
    ----------
    measured : XRFStack
        The LR maps, (n_elements, n_frames, H, W), counts per measured pixel.
    enhanced : XRFStack
        Their enhancement, (n_elements, n_frames, H * step_px, W * step_px).
    probe_intensity : ndarray (h, w) or ProbeIntensity
        Probe intensity on the *enhanced* pixel grid (normalised to unit sum here).
        A ``ProbeIntensity`` must have the enhanced stack's pixel size.
    step_px : int
        Scan step in enhanced pixels (the enhancement scale).
    fast_axis : {"x", "y"}
        Fly-scan direction.
    mode : str
        Forward-model mode (``"fly"`` or ``"step"``), as in ``flyscan``.

    Returns
    -------
    dict
        ``residual`` (ndarray, (n_elements, n_frames, H, W), float64,
        ``redegraded - measured``), ``redegraded`` (float32, same shape),
        ``relative_l2`` and ``total_signal_error`` (ndarray (n_elements, n_frames):
        ``||residual|| / ||measured||`` and ``(sum(redegraded) - sum(measured)) /
        sum(measured)`` per map), ``relative_l2_overall`` and
        ``total_signal_error_overall`` (float, over all maps), ``elements``.
    """
    from xrf_sr_kedro.metrics.image import consistency_residual
    from xrf_sr_kedro.physics.flyscan import flyscan

    for name, s in (("measured", measured), ("enhanced", enhanced)):
        if not isinstance(s, XRFStack):
            raise TypeError(f"{name} must be an XRFStack, got {type(s).__name__}")
    step_px = positive_int("step_px", step_px)
    if isinstance(probe_intensity, ProbeIntensity):
        if not math.isclose(probe_intensity.pixel_size_nm, enhanced.pixel_size_nm, rel_tol=1e-3):
            raise ValueError(
                f"probe_intensity pixel size {probe_intensity.pixel_size_nm} nm differs from "
                f"the enhanced stack's {enhanced.pixel_size_nm} nm; resample the probe"
            )
    probe = unit_probe(probe_intensity)
    if measured.elements != enhanced.elements:
        raise ValueError(
            f"measured elements {measured.elements} differ from enhanced {enhanced.elements}"
        )
    h, w = measured.shape_hw
    eh, ew = enhanced.shape_hw
    if (eh // step_px, ew // step_px) != (h, w) or measured.n_frames != enhanced.n_frames:
        raise ValueError(
            f"enhanced maps {enhanced.data.shape} re-degraded at step_px={step_px} give "
            f"{(eh // step_px, ew // step_px)} px, but the measured maps are "
            f"{measured.data.shape}"
        )
    n_fine = fine_pixels_per_measured_pixel(enhanced)
    if n_fine not in (1, step_px * step_px):
        raise ValueError(
            f"the enhanced stack holds counts per fine pixel with {n_fine} fine pixels a "
            f"measured pixel, but step_px={step_px} makes {step_px * step_px}"
        )
    redegraded = per_measured_pixel(
        flyscan(enhanced.data, probe, step_px, fast_axis=fast_axis, mode=mode), n_fine
    )
    n_el, n_fr = measured.data.shape[:2]
    rel_l2 = np.empty((n_el, n_fr))
    rel_sum = np.empty((n_el, n_fr))
    for e in range(n_el):
        for f in range(n_fr):
            _, rel_l2[e, f], rel_sum[e, f] = consistency_residual(
                measured.data[e, f], redegraded[e, f]
            )
    residual, l2_all, sum_all = consistency_residual(measured.data, redegraded)
    return {
        "residual": residual,
        "redegraded": redegraded,
        "relative_l2": rel_l2,
        "total_signal_error": rel_sum,
        "relative_l2_overall": l2_all,
        "total_signal_error_overall": sum_all,
        "elements": list(measured.elements),
    }


def _frame_title(stack: XRFStack, element: str, frame: int) -> str:
    """``"Fe_K, frame 3 of 36 (30.0 deg)"``: the real frame count and angle."""
    angle = "" if stack.angles_deg is None else f" ({stack.angles_deg[frame]:.1f} deg)"
    return f"{element}, frame {frame} of {stack.n_frames}{angle}"


def consistency_report(
    measured: XRFStack,
    enhanced: XRFStack,
    probe_intensity: ProbeIntensity,
    *,
    fast_axis: Literal["x", "y"] = "x",
    mode: str = "fly",
    n_example_maps: int = 3,
    shown_min_counts: float | None = None,
    shown_max_counts: float | None = None,
    residual_tolerance: float = 1.5,
) -> tuple[dict[str, list[dict[str, float]]], dict[str, Figure]]:
    """Degrade the enhanced maps again and compare them with the measured ones.

    Parameters
    ----------
    measured : XRFStack
        The LR maps; restricted to the enhanced stack's elements.
    enhanced : XRFStack
        Their enhancement; the step is the ratio of the pixel sizes.
    probe_intensity : ProbeIntensity
        The probe at any pixel size (resampled to the enhanced grid).
    fast_axis, mode
        As for :func:`data_consistency`.
    n_example_maps : int
        Frames per element shown as before / after / residual figures.
    shown_min_counts, shown_max_counts, residual_tolerance
        The low-count guard and the noise comparison (:func:`noise_check`); its
        verdict and any dose warning are logged and written on every figure.

    Returns
    -------
    metrics : dict
        MLflow metric history: ``consistency_relative_l2_overall``,
        ``consistency_total_signal_error_overall`` and the values of
        :func:`noise_check` (``consistency_residual_vs_noise``, ...) at step 0.
    figures : dict of str to Figure
        ``"<element>_frame<NNN>.png"`` before / after / residual panels.
    """
    if enhanced.elements != measured.elements:
        measured = measured.select_elements(list(enhanced.elements))
    step = round(measured.pixel_size_nm / enhanced.pixel_size_nm)
    probe = resample_probe(probe_intensity, enhanced.pixel_size_nm)
    report = data_consistency(
        measured, enhanced, probe.intensity, step, fast_axis=fast_axis, mode=mode
    )
    logger.info(
        "Data consistency: relative L2 residual %.3f, total-signal error %.2e",
        report["relative_l2_overall"],
        report["total_signal_error_overall"],
    )
    noise, notes = noise_check(
        measured, report["relative_l2_overall"], shown_min_counts, shown_max_counts,
        residual_tolerance,
    )
    values = {key: report[key] for key in ("relative_l2_overall", "total_signal_error_overall")}
    metrics = {
        f"consistency_{key}": [{"value": float(value), "step": 0}]
        for key, value in {**values, **noise}.items()
    }
    figures = {}
    frames = np.linspace(0, measured.n_frames - 1, min(n_example_maps, measured.n_frames))
    for e, element in enumerate(measured.elements):
        for f in frames.astype(int):
            # the title (element, frame, angle) above the verdict and any dose warning
            title = "\n".join([_frame_title(measured, element, int(f)), *notes])
            figures[f"{element}_frame{f:03d}.png"] = plot_before_after(
                measured.data[e, f],
                enhanced.data[e, f],
                report["residual"][e, f],
                title=title,
                pixel_size_before_nm=measured.pixel_size_nm,
                pixel_size_after_nm=enhanced.pixel_size_nm,
                units=measured.units,
                units_after=enhanced.units,
            )
            figures[f"{element}_frame{f:03d}.png"].suptitle(title, fontsize=8)
    return metrics, figures
