"""Counting noise of an XRF measurement."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def simulate_counts(
    signal: np.ndarray,
    mean_counts: float,
    background_counts: float = 0.0,
    readout_sigma_counts: float = 0.0,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Noisy detector counts for a non-negative ``signal``.

    The signal is scaled so that its mean over the whole array is ``mean_counts``
    counts per pixel (dwell time x flux x cross-section folded into one number),
    a uniform ``background_counts`` is added, the total is Poisson-sampled and
    Gaussian readout noise of standard deviation ``readout_sigma_counts`` is added::

        counts ~ Poisson(signal * mean_counts / mean(signal) + background) + N(0, sigma^2)

    so ``E[counts] = scaled + background`` and ``Var[counts] = scaled + background +
    sigma^2``.  Convert back to the signal's scale with
    ``(counts - background_counts) * mean(signal) / mean_counts``.

    Parameters
    ----------
    signal : ndarray
        Non-negative noise-free signal (any shape) with a positive mean.
    mean_counts : float
        Mean signal counts per pixel (> 0).
    background_counts : float
        Mean background counts per pixel (>= 0).
    readout_sigma_counts : float
        Standard deviation of the Gaussian readout noise in counts (>= 0).
    seed : int or numpy.random.Generator

    Returns
    -------
    counts : ndarray, float32, same shape as ``signal``
        May be negative where readout noise dominates.
    """
    s = np.asarray(signal, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("signal must be a non-empty finite array")
    if np.any(s < 0):
        raise ValueError(f"signal must be non-negative, got minimum {s.min()!r}")
    mean = s.mean()
    if mean <= 0:
        raise ValueError("signal must have a positive mean")
    mean_counts = float(mean_counts)
    if not np.isfinite(mean_counts) or mean_counts <= 0:
        raise ValueError(f"mean_counts must be positive, got {mean_counts!r}")
    if not np.isfinite(background_counts) or background_counts < 0:
        raise ValueError(f"background_counts must be >= 0, got {background_counts!r}")
    if not np.isfinite(readout_sigma_counts) or readout_sigma_counts < 0:
        raise ValueError(f"readout_sigma_counts must be >= 0, got {readout_sigma_counts!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    lam = s * (mean_counts / mean) + float(background_counts)
    counts = rng.poisson(lam).astype(np.float32)
    if readout_sigma_counts > 0:
        counts += rng.normal(0.0, float(readout_sigma_counts), size=counts.shape).astype(
            np.float32
        )
    return counts
