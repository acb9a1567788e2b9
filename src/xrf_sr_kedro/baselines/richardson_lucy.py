"""Richardson-Lucy super-resolution with the fly-scan operator: the classical baseline."""

from __future__ import annotations

import logging

import numpy as np
from xrf_sr_kedro.progress import progress

from xrf_sr_kedro.physics.flyscan import (
    FastAxis,
    ScanMode,
    _probe_to_numpy,
    flyscan,
    flyscan_adjoint,
)

logger = logging.getLogger(__name__)

_EPS = 1e-12


def richardson_lucy_sr(
    lr: np.ndarray,
    probe: np.ndarray,
    step_px: int,
    n_iter: int = 30,
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
    n_substeps: int | None = None,
) -> np.ndarray:
    """Richardson-Lucy deconvolution and upsampling through the fly-scan model ``A``.

    Iterates ``x <- x * A^T(y / A x) / A^T 1`` from the nearest-neighbour upsampling
    of ``y`` (clipped to be positive), which keeps ``x`` non-negative and is the
    maximum-likelihood (EM) update for Poisson data.  ``A`` is
    :func:`~xrf_sr_kedro.physics.flyscan.flyscan` with the given scan settings.

    Parameters
    ----------
    lr : ndarray, shape (..., h, w)
        Measured maps (negative values, e.g. from readout noise, are clipped to 0).
    probe : ndarray (ph, pw) or ProbeIntensity
        Probe intensity on the HR grid; normalised to sum 1 here.
    step_px : int
        Scan step in HR pixels (the upsampling factor).
    n_iter : int
        Number of iterations (more sharpens and amplifies noise).
    fast_axis, mode, n_substeps
        As for :func:`~xrf_sr_kedro.physics.flyscan.flyscan`.

    Returns
    -------
    hr : ndarray, float32, shape (..., h * step_px, w * step_px), non-negative
    """
    y = np.asarray(lr, dtype=np.float64)
    if y.ndim < 2:
        raise ValueError(f"lr must have shape (..., h, w), got shape {y.shape}")
    if int(n_iter) != n_iter or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    p = _probe_to_numpy(probe)
    if np.any(p < 0) or p.sum() <= 0:
        raise ValueError("probe must be non-negative with a positive sum")
    p = p / p.sum()
    s = int(step_px)
    y = np.clip(y, 0.0, None)
    h, w = y.shape[-2:]
    hr_shape = (h * s, w * s)
    args = dict(step_px=s, fast_axis=fast_axis, mode=mode, n_substeps=n_substeps)
    x = np.repeat(np.repeat(y, s, axis=-2), s, axis=-1)
    floor = max(float(y.mean()) * 1e-3, _EPS)
    x = np.maximum(x, floor)
    norm = flyscan_adjoint(np.ones((h, w)), p, hr_shape=hr_shape, **args).astype(np.float64)
    norm = np.maximum(norm, _EPS)
    for _ in progress(range(int(n_iter)), "Richardson-Lucy", unit="iteration", quiet=True):
        ax = flyscan(x, p, **args).astype(np.float64)
        ratio = y / np.maximum(ax, _EPS)
        x = x * flyscan_adjoint(ratio, p, hr_shape=hr_shape, **args) / norm
    return x.astype(np.float32)
