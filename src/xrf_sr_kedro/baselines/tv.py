"""Total-variation deconvolution: classical model-based super-resolution through the
exact fly-scan operator.

Each map ``y`` (counts on the coarse scan grid) is inverted as::

    x* = argmin_{x >= 0}  1/2 ||A x - y||^2  +  weight * TV(x)

with ``A`` the fly-scan forward model of :mod:`xrf_sr_kedro.physics.flyscan` (probe
correlation, motion across one step, sampling once per step; it has an exact
adjoint) and ``TV`` the isotropic total variation ``sum |grad x|_2`` with forward
differences.  The problem is solved with the primal-dual hybrid gradient method of
Chambolle & Pock (2011) on ``K = [A; grad]``, projecting onto ``x >= 0``.  Each map
is divided by its mean before solving (and multiplied back after), so ``weight`` is
dimensionless: TV per fine pixel relative to the map's mean level.

The least-squares data term is used rather than the Poisson likelihood: at the
default 150-300 counts per scan point the two differ little and least squares keeps
the prox step in closed form.  deepinv 0.5.0 (a maintained library with these
priors and solvers) cannot be used here: it needs torchvision, which does not import
beside the project's pinned CPU torch 2.13.0, so the solver is written with numpy
(about 40 lines, tested).

The weight is chosen by :func:`tune_tv_weight` on tuning data disjoint from the
evaluated sample (:mod:`xrf_sr_kedro.evaluation.tuning`), never on the evaluation truth.

References
----------
A. Chambolle and T. Pock, "A first-order primal-dual algorithm for convex problems
with applications to imaging", J. Math. Imaging Vis. 40, 120-145 (2011).
L. I. Rudin, S. Osher and E. Fatemi, Physica D 60, 259-268 (1992).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from xrf_sr_kedro.progress import progress

from xrf_sr_kedro.baselines.upsampling import bicubic_upsample
from xrf_sr_kedro.physics.flyscan import FastAxis, ScanMode, _probe_to_numpy, flyscan, flyscan_adjoint

logger = logging.getLogger(__name__)

__all__ = ["tv_deconvolution_sr", "tune_tv_weight", "gradient", "divergence"]


def gradient(x: np.ndarray) -> np.ndarray:
    """Forward differences along the last two axes (0 at the far edge): shape (2, ...)."""
    g = np.zeros((2,) + x.shape, dtype=x.dtype)
    g[0, ..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    g[1, ..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return g


def divergence(g: np.ndarray) -> np.ndarray:
    """``-gradient^T``: ``<gradient(x), g> == -<x, divergence(g)>``."""
    gy, gx = g[0], g[1]
    d = np.zeros_like(gy)
    d[..., :-1, :] += gy[..., :-1, :]
    d[..., 1:, :] -= gy[..., :-1, :]
    d[..., :, :-1] += gx[..., :, :-1]
    d[..., :, 1:] -= gx[..., :, :-1]
    return d


def _operator_norm_sq(op, adj, shape: tuple[int, ...], n_iter: int = 20) -> float:
    x = np.random.default_rng(0).standard_normal(shape)
    norm = 1.0
    for _ in range(n_iter):
        x = adj(op(x))
        norm = float(np.linalg.norm(x))
        x /= norm
    return norm


def tv_deconvolution_sr(
    lr: np.ndarray,
    probe: np.ndarray,
    step_px: int,
    weight: float,
    n_iter: int = 200,
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
    n_substeps: int | None = None,
) -> np.ndarray:
    """Super-resolve fly-scanned maps by TV-regularised least squares (see module doc).

    Parameters
    ----------
    lr : ndarray, shape (..., h, w)
        Measured maps (counts); every map is solved independently (batched).
    probe : ndarray (ph, pw) or ProbeIntensity
        Probe intensity on the fine grid; normalised to sum 1 here.
    step_px : int
        Scan step in fine pixels (the upsampling factor).
    weight : float
        TV weight (>= 0), dimensionless (maps are divided by their mean first).
    n_iter : int
        Primal-dual iterations.
    fast_axis, mode, n_substeps
        As for :func:`~xrf_sr_kedro.physics.flyscan.flyscan`.

    Returns
    -------
    hr : ndarray, float32, shape (..., h * step_px, w * step_px), non-negative, counts
        per scan point (the mean level of ``lr``).
    """
    y = np.asarray(lr, dtype=np.float64)
    if y.ndim < 2:
        raise ValueError(f"lr must have shape (..., h, w), got shape {y.shape}")
    weight = float(weight)
    if not np.isfinite(weight) or weight < 0:
        raise ValueError(f"weight must be a non-negative number, got {weight!r}")
    if int(n_iter) != n_iter or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    p = _probe_to_numpy(probe)
    p = p / p.sum()
    s = int(step_px)
    hr_shape = (y.shape[-2] * s, y.shape[-1] * s)
    args = dict(step_px=s, fast_axis=fast_axis, mode=mode, n_substeps=n_substeps)

    def op(x: np.ndarray) -> np.ndarray:
        return flyscan(x, p, **args).astype(np.float64)

    def adj(r: np.ndarray) -> np.ndarray:
        return flyscan_adjoint(r, p, hr_shape=hr_shape, **args).astype(np.float64)

    scale = np.maximum(np.abs(y).mean(axis=(-2, -1), keepdims=True), 1e-12)
    # Solve the equivalent problem with A / ||A|| and y / ||A|| (and the weight scaled
    # by ||A||^-2) so the data and TV blocks of K have comparable norms: with ||A|| ~
    # 1 / step_px, plain PDHG would take tiny steps on the data term.
    a_norm = np.sqrt(_operator_norm_sq(op, adj, hr_shape))
    yn = y / scale / a_norm
    tv_weight = weight / a_norm**2
    tau = sigma = 0.99 / 3.0  # ||[A / ||A||; grad]||^2 <= 1 + 8
    x = np.clip(bicubic_upsample(yn * a_norm, s), 0.0, None)
    x_bar = x.copy()
    dual_data = np.zeros_like(yn)
    dual_tv = np.zeros((2,) + x.shape)
    for _ in progress(range(int(n_iter)), "TV deconvolution", unit="iteration", quiet=True):
        dual_data = (dual_data + sigma * (op(x_bar) / a_norm - yn)) / (1.0 + sigma)
        dual_tv += sigma * gradient(x_bar)
        if weight > 0:
            dual_tv /= np.maximum(1.0, np.sqrt((dual_tv**2).sum(axis=0)) / tv_weight)
        else:
            dual_tv[:] = 0.0
        x_new = np.clip(x - tau * (adj(dual_data) / a_norm - divergence(dual_tv)), 0.0, None)
        x_bar = 2.0 * x_new - x
        x = x_new
    return (x * scale).astype(np.float32)


def tune_tv_weight(
    lr: np.ndarray,
    reference: np.ndarray,
    probe: np.ndarray,
    step_px: int,
    weights: Sequence[float],
    n_iter: int = 200,
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
    n_substeps: int | None = None,
) -> tuple[float, pd.DataFrame]:
    """Sweep TV weights on tuning data and return the best (highest PSNR).

    Parameters
    ----------
    lr : ndarray, shape (..., h, w)
        Coarse tuning maps (e.g. the fine-tuning region's 200 nm scans).
    reference : ndarray, shape (..., h * step_px, w * step_px)
        What the enhancement should give (e.g. the same region's 50 nm scans); never
        the evaluation truth.
    probe, step_px, n_iter, fast_axis, mode, n_substeps
        As for :func:`tv_deconvolution_sr`, on the reference's grid.
    weights : sequence of float
        Candidate weights.

    Returns
    -------
    best_weight : float
    table : pandas.DataFrame
        Columns ``weight``, ``psnr_db`` (after a least-squares gain/offset match, as the
        evaluation does), one row a weight.
    """
    from xrf_sr_kedro.metrics.image import match_intensity, psnr

    ref = np.asarray(reference, dtype=np.float64)
    expected = tuple(np.shape(lr)[:-2]) + (np.shape(lr)[-2] * int(step_px), np.shape(lr)[-1] * int(step_px))
    if ref.shape != expected:
        raise ValueError(f"reference must have shape {expected} (lr x step_px), got {ref.shape}")
    if len(weights) == 0:
        raise ValueError("weights is empty: give at least one TV weight to try")
    data_range = float(ref.max() - ref.min()) or 1.0
    rows = []
    for weight in weights:
        est = tv_deconvolution_sr(lr, probe, step_px, weight, n_iter, fast_axis, mode, n_substeps)
        rows.append({"weight": float(weight),
                     "psnr_db": psnr(match_intensity(est, ref), ref, data_range=data_range)})
    table = pd.DataFrame(rows)
    best = float(table.weight[table.psnr_db.idxmax()])
    logger.info("TV weight %.3g chosen on tuning data (PSNR %.2f dB)", best, table.psnr_db.max())
    return best, table
