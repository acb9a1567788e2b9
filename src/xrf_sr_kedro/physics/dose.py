"""Counting statistics of a measurement: its dose and the residual Poisson noise allows.

The consistency residual of an enhancement (``metrics.image.consistency_residual``:
``||redegraded - measured|| / ||measured||``) cannot go below the noise of the
measurement: even the noise-free truth, re-degraded, differs from a Poisson
measurement ``m`` of mean ``lam`` by ``lam - m``, whose expected squared norm is
``sum(lam)``, while ``E ||m||^2 = sum(lam^2 + lam)``. So the residual expected
from noise alone is

    r_poisson = sqrt(sum(lam) / sum(lam^2 + lam)) = 1 / sqrt(D (1 + cv^2) + 1)

for a mean dose ``D`` counts per pixel and a map whose pixel values vary with
coefficient of variation ``cv``. From the measurement itself, with
``E[m] = lam`` and ``E[m^2] = lam^2 + lam``, ``r_poisson ~ sqrt(sum(m) / sum(m^2))``.
A residual well above that (ratio > ~1.5) means the enhanced maps disagree
with the data beyond noise: texture the data does not support, a wrong probe,
a wrong fast axis, or misaligned frames.

Maps that are not raw counts (fitted, I0-normalised) have an unknown gain ``g``
(signal units per detected photon); :func:`estimate_dose` finds it from the
data, assuming Poisson statistics, from the variance of neighbour differences
against the local mean (``var(x_i - x_j) = 2 g mean``), taking the median over
small blocks so that edges (true structure) count little. Structure left in
the blocks inflates the variance, so the gain is over- and the dose
under-estimated: the guard errs towards warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

#: Counts per scan point (where the sample is) from which on the default network beats
#: bicubic and TV deconvolution by >= 0.5 dB without adding more wrong high-frequency
#: detail than right: ``benchmarks/low_count.py`` (+0.51 dB at 100 counts, +0.08 at 50,
#: -0.41 at 20, -0.74 at 10).  The default of ``enhancement.consistency.shown_min_counts``.
SHOWN_MIN_COUNTS = 100.0
#: The highest dose the low-count study tested (the network still wins there, +0.73 dB):
#: above it the benefit is not measured.
SHOWN_MAX_COUNTS = 1000.0

__all__ = [
    "SHOWN_MIN_COUNTS",
    "SHOWN_MAX_COUNTS",
    "DoseEstimate",
    "estimate_dose",
    "expected_poisson_residual",
    "expected_poisson_residual_from_counts",
    "dose_guard",
    "residual_vs_noise",
]


def expected_poisson_residual(dose_counts_per_pixel: float, contrast_cv: float = 0.0) -> float:
    """Relative L2 residual that Poisson noise alone gives at a mean dose.

    Parameters
    ----------
    dose_counts_per_pixel : float
        Mean detected counts per measured pixel, > 0.
    contrast_cv : float
        Coefficient of variation (std / mean) of the noise-free map over its pixels.

    Returns
    -------
    float
        ``1 / sqrt(D (1 + cv^2) + 1)``.
    """
    d = float(dose_counts_per_pixel)
    if not np.isfinite(d) or d <= 0:
        raise ValueError(f"dose_counts_per_pixel must be positive, got {dose_counts_per_pixel!r}")
    return float(1.0 / np.sqrt(d * (1.0 + float(contrast_cv) ** 2) + 1.0))


def expected_poisson_residual_from_counts(measured_counts: np.ndarray) -> float:
    """``sqrt(sum(m) / sum(m^2))``: the noise-only residual, estimated from count maps."""
    m = np.asarray(measured_counts, dtype=np.float64)
    if np.any(m < 0):
        raise ValueError(
            "measured_counts must be non-negative counts (scale fitted maps by 1 / gain)"
        )
    s2 = float((m**2).sum())
    if s2 == 0:
        raise ValueError("measured_counts is zero everywhere")
    return float(np.sqrt(m.sum() / s2))


@dataclass(frozen=True)
class DoseEstimate:
    """Counting statistics of a set of maps.

    Attributes
    ----------
    gain : float
        Signal units per detected count (1 for raw counts).
    mean_counts_per_pixel : float
        Mean detected counts per pixel over all maps.
    signal_counts_per_pixel : float
        Mean counts over the pixels above the median (where the sample is).
    expected_residual : float
        Poisson-only consistency residual (:func:`expected_poisson_residual_from_counts`).
    method : str
        ``"counts"`` or ``"noise variance"``.
    """

    gain: float
    mean_counts_per_pixel: float
    signal_counts_per_pixel: float
    expected_residual: float
    method: str


def _gain_from_noise(maps: np.ndarray, block_px: int) -> float:
    ratios = []
    for m in maps.reshape(-1, *maps.shape[-2:]):
        h, w = m.shape
        for y0 in range(0, h - block_px + 1, block_px):
            for x0 in range(0, w - block_px + 1, block_px):
                b = m[y0 : y0 + block_px, x0 : x0 + block_px]
                mean = b.mean()
                if mean <= 0:
                    continue
                dx = np.diff(b, axis=1).ravel()
                dy = np.diff(b, axis=0).ravel()
                ratios.append(0.5 * np.concatenate([dx, dy]).var() / mean)
    if not ratios:
        raise ValueError(
            f"maps too small or empty for {block_px} px blocks; cannot estimate the gain"
        )
    return float(np.median(ratios))


def estimate_dose(maps: np.ndarray, units: str = "counts", block_px: int = 8) -> DoseEstimate:
    """Dose of maps ``(..., H, W)``: from the values for raw counts, else from the noise.

    Parameters
    ----------
    maps : ndarray, shape (..., H, W)
    units : str
        ``counts`` (``photons``, ``cts``): values are counts, gain 1. Anything
        else: the gain is estimated from the noise (module docstring).
    block_px : int
        Block edge for the noise estimate.
    """
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim < 2:
        raise ValueError(f"maps must be at least 2-D (..., H, W), got shape {m.shape}")
    if units in ("counts", "photons", "cts"):
        gain, method = 1.0, "counts"
    else:
        gain, method = _gain_from_noise(m, int(block_px)), "noise variance"
        if gain <= 0:
            raise ValueError(
                "no noise found in the maps (gain <= 0); are they smoothed or simulated "
                "without noise?"
            )
    counts = np.clip(m, 0, None) / gain
    signal = counts[counts > np.median(counts)]
    est = DoseEstimate(
        gain=gain,
        mean_counts_per_pixel=float(counts.mean()),
        signal_counts_per_pixel=float(signal.mean()) if signal.size else 0.0,
        expected_residual=expected_poisson_residual_from_counts(counts),
        method=method,
    )
    logger.info(
        "dose: %.3g counts/pixel on average, %.3g where the sample is (%s, gain %.3g); "
        "Poisson-only consistency residual %.3f",
        est.mean_counts_per_pixel, est.signal_counts_per_pixel, method, gain, est.expected_residual,
    )
    return est


def residual_vs_noise(
    residual: float, expected: float, tolerance: float = 1.5
) -> tuple[float, str]:
    """Ratio of a consistency residual to the Poisson level, and a one-line verdict."""
    if expected <= 0:
        raise ValueError(f"expected residual must be positive, got {expected!r}")
    ratio = float(residual) / float(expected)
    if ratio <= tolerance:
        return ratio, (
            f"residual {residual:.3f} is {ratio:.2f}x the Poisson level {expected:.3f}: "
            "consistent with noise"
        )
    return ratio, (
        f"residual {residual:.3f} is {ratio:.2f}x the Poisson level {expected:.3f}: the enhanced "
        "maps disagree with the data beyond noise (see docs/real_data.md, 'A high residual')"
    )


def dose_guard(
    estimate: DoseEstimate, shown_min_counts: float, shown_max_counts: float | None = None
) -> str | None:
    """A warning when the data's dose lies outside the range where enhancement was shown to help.

    Parameters
    ----------
    estimate : DoseEstimate
        From :func:`estimate_dose`; its ``signal_counts_per_pixel`` (the counts
        where the sample is) is compared.
    shown_min_counts, shown_max_counts : float
        Counts per pixel between which the network's benefit was measured on
        simulated data (the low-count study of issue 16).

    Returns
    -------
    str or None
        The warning text, or ``None`` when the dose is inside the range.
    """
    d = estimate.signal_counts_per_pixel
    if d < shown_min_counts:
        return (
            f"dose {d:.3g} counts/pixel (where the sample is) is below {shown_min_counts:.3g}, "
            "the lowest dose at which enhancement was shown to help: the network may draw "
            "texture the data does not hold; treat the enhanced maps as unverified"
        )
    if shown_max_counts is not None and d > shown_max_counts:
        return (
            f"dose {d:.3g} counts/pixel is above {shown_max_counts:.3g}, the highest dose "
            "tested; the enhancement is not validated there"
        )
    return None
