"""Image-quality metrics against a ground truth and a data-consistency residual.

All functions accept NumPy arrays or torch tensors and return plain Python
floats (or NumPy arrays), so they can be logged directly.

* :func:`psnr` -- peak signal-to-noise ratio in dB over all elements.
* :func:`ssim` -- structural similarity (Wang et al. 2004), Gaussian window,
  computed with ``torch.nn.functional.conv2d``.
* ``bicubic_upsample`` -- re-exported from :mod:`xrf_sr_kedro.baselines.upsampling`.
* :func:`consistency_residual` -- for data without truth: how well an enhanced
  map, re-degraded by the forward model, reproduces the measurement.

References
----------
Wang, Bovik, Sheikh & Simoncelli (2004), "Image quality assessment: from error
visibility to structural similarity", IEEE Trans. Image Process. 13, 600-612.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from xrf_sr_kedro.baselines.upsampling import bicubic_upsample  # moved there; re-exported

logger = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor

__all__ = ["psnr", "ssim", "bicubic_upsample", "consistency_residual", "scaled_relative_error"]


def _as_float64_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(dtype=torch.float64)
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        return torch.as_tensor(np.asarray(x, dtype=np.float64))
    raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")


def _check_pair(pred: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    p = _as_float64_tensor(pred, "pred")
    t = _as_float64_tensor(target, "target")
    if tuple(p.shape) != tuple(t.shape):
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}"
        )
    if p.numel() == 0:
        raise ValueError("pred and target must not be empty")
    t = t.to(p.device)
    return p, t


def _check_data_range(data_range: float) -> float:
    data_range = float(data_range)
    if not math.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    return data_range


def psnr(pred: ArrayLike, target: ArrayLike, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio of ``pred`` against ``target`` in dB.

    Parameters
    ----------
    pred, target : ndarray or torch.Tensor, any shape (the same for both)
        Estimate and reference, on the same grid.
    data_range : float
        Peak value range of the reference (1.0 for maps scaled to [0, 1]).

    Returns
    -------
    psnr_db : float
        ``10 log10(data_range**2 / MSE)`` with the MSE averaged over every
        element; ``inf`` when the arrays are identical.
    """
    p, t = _check_pair(pred, target)
    data_range = _check_data_range(data_range)
    mse = float(torch.mean((p - t) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * math.log10(data_range**2 / mse))


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device) -> torch.Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    g = g / g.sum()
    return g


def _to_nchw(x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 2:
        return x[None, None]
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        return x.reshape(x.shape[0] * x.shape[1], 1, x.shape[2], x.shape[3])
    raise ValueError(f"ssim inputs must be (H, W), (N, H, W) or (N, C, H, W), got {tuple(x.shape)}")


def ssim(
    pred: ArrayLike,
    target: ArrayLike,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
) -> float:
    """Mean structural similarity index (Wang et al. 2004).

    Parameters
    ----------
    pred, target : ndarray or torch.Tensor, shape (H, W), (N, H, W) or (N, C, H, W)
        Estimate and reference.  Each 2-D image (every sample and channel) is
        compared separately with a 2-D window; the result is the mean over all
        images and all valid window positions.
    data_range : float
        Dynamic range of the reference (``L`` in the paper).
    win_size : int
        Side of the Gaussian window (11 in the paper; odd, at most min(H, W)).
    sigma : float
        Standard deviation of the Gaussian window in pixels (1.5 in the paper).

    Returns
    -------
    ssim : float
        Mean SSIM over the valid region (windows that lie fully inside the image).

    Notes
    -----
    Uses ``K1 = 0.01``, ``K2 = 0.03``, ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2`` and
    population (not sample) covariances, matching
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=L)`` to 1e-6 (the tolerance
    tests/metrics/test_image_metrics.py checks; float64 agrees to ~1e-15).  Computed in
    float64 with the separable window as weighted sums of shifted views on the inputs'
    device.

    References
    ----------
    Wang, Bovik, Sheikh & Simoncelli (2004), IEEE Trans. Image Process. 13, 600-612.
    """
    p, t = _check_pair(pred, target)
    data_range = _check_data_range(data_range)
    if win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"win_size must be a positive odd integer, got {win_size}")
    p4, t4 = _to_nchw(p), _to_nchw(t)
    h, w = p4.shape[-2:]
    if win_size > min(h, w):
        raise ValueError(
            f"images must be at least win_size={win_size} pixels on each side, got {h}x{w}"
        )
    g = _gaussian_window(win_size, sigma, p4.dtype, p4.device)
    taps = [float(v) for v in g]

    def filt(x: torch.Tensor) -> torch.Tensor:
        # the separable window as weighted sums of shifted views ("valid" positions):
        # the same sums in the same order as conv2d with 1 x win and win x 1 kernels,
        # 3-4x faster on CPU in float64, where conv2d has no optimised kernel
        w_out, h_out = x.shape[-1] - win_size + 1, x.shape[-2] - win_size + 1
        rows = x[..., :, 0:w_out] * taps[0]
        for k in range(1, win_size):
            rows.add_(x[..., :, k : k + w_out], alpha=taps[k])
        out = rows[..., 0:h_out, :] * taps[0]
        for k in range(1, win_size):
            out.add_(rows[..., k : k + h_out, :], alpha=taps[k])
        return out

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    stacked = torch.cat([p4, t4, p4 * p4, t4 * t4, p4 * t4], dim=1)  # (N, 5, H, W)
    n = stacked.shape[0]
    filtered = filt(stacked.reshape(n * 5, 1, h, w)).reshape(n, 5, h - win_size + 1, w - win_size + 1)
    mu_p, mu_t, e_pp, e_tt, e_pt = filtered.unbind(dim=1)
    var_p = e_pp - mu_p**2
    var_t = e_tt - mu_t**2
    cov = e_pt - mu_p * mu_t
    num = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
    den = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    return float(torch.mean(num / den))


def consistency_residual(
    measured: np.ndarray, redegraded: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Data-consistency residual between a measurement and a re-degraded estimate.

    For data without a ground truth, the enhanced map is passed back through the
    fly-scan forward model (``xrf_sr_kedro.physics.flyscan``) onto the measured
    grid; a faithful enhancement reproduces the measurement up to noise.

    Parameters
    ----------
    measured : ndarray, shape (..., h, w)
        Measured low-resolution map(s).
    redegraded : ndarray, shape (..., h, w)
        The enhanced map(s) re-degraded onto the measured grid.

    Returns
    -------
    residual : ndarray, shape (..., h, w), float64
        ``redegraded - measured``.
    relative_l2 : float
        ``||residual||_2 / ||measured||_2`` (``inf`` if ``measured`` is all zero
        and the residual is not, ``0`` if both are zero).
    relative_total_signal_error : float
        ``(sum(redegraded) - sum(measured)) / sum(measured)``: the fraction of
        counts gained (positive) or lost (negative).
    """
    m = np.asarray(measured.detach().cpu() if isinstance(measured, torch.Tensor) else measured,
                   dtype=np.float64)
    r = np.asarray(redegraded.detach().cpu() if isinstance(redegraded, torch.Tensor) else redegraded,
                   dtype=np.float64)
    if m.shape != r.shape:
        raise ValueError(
            f"measured and redegraded must have the same shape, got {m.shape} and {r.shape}"
        )
    if m.ndim < 2:
        raise ValueError(f"measured must be at least 2-D (..., h, w), got shape {m.shape}")
    residual = r - m
    norm_m = float(np.linalg.norm(m))
    norm_r = float(np.linalg.norm(residual))
    if norm_m == 0.0:
        rel_l2 = 0.0 if norm_r == 0.0 else float("inf")
    else:
        rel_l2 = norm_r / norm_m
    sum_m = float(m.sum())
    diff = float(r.sum()) - sum_m
    if sum_m == 0.0:
        rel_sum = 0.0 if diff == 0.0 else float("inf") * np.sign(diff)
    else:
        rel_sum = diff / sum_m
    return residual, float(rel_l2), float(rel_sum)


def match_intensity(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``estimate`` mapped onto ``truth``'s intensity scale by least squares.

    A method's output is in counts while the ground truth is a concentration, so
    before PSNR/SSIM/FSC against the truth each estimate is replaced by
    ``gain * estimate + offset`` with the gain and offset that minimise
    ``||gain * estimate + offset - truth||^2``.  This removes the unknown
    detector scale and background but nothing spatial.

    Parameters
    ----------
    estimate, truth : ndarray, the same shape

    Returns
    -------
    ndarray, float64, the shape of ``truth``
    """
    e = np.asarray(estimate, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if e.shape != t.shape:
        raise ValueError(f"estimate shape {e.shape} does not match truth shape {t.shape}")
    e_mean, t_mean = e.mean(), t.mean()
    var = np.mean((e - e_mean) ** 2)
    gain = np.mean((e - e_mean) * (t - t_mean)) / var if var > 0 else 0.0
    return gain * (e - e_mean) + t_mean


def scaled_relative_error(volume: np.ndarray, truth: np.ndarray) -> float:
    """Relative L2 error of ``volume`` after its least-squares gain, averaged over axis 0.

    For each element ``v, t`` of ``volume, truth`` (same shapes, first axis = element):
    ``||a v - t|| / ||t||`` with ``a = <v, t> / <v, v>``, the gain that best matches ``v``
    to ``t`` (reconstructions and the truth are in different units).
    """
    errs = []
    for v, t in zip(np.asarray(volume, np.float64), np.asarray(truth, np.float64)):
        a = float((v * t).sum() / (v * v).sum())
        errs.append(np.linalg.norm(a * v - t) / np.linalg.norm(t))
    return float(np.mean(errs))
