"""Interpolating upsampling baselines: nearest (what the raw map shows on a fine grid),
bicubic (the customary super-resolution baseline) and trilinear (volumes)."""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor

__all__ = ["bicubic_upsample", "nearest_upsample", "trilinear_upsample"]


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or int(scale) != scale or int(scale) < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def nearest_upsample(x: np.ndarray, scale: int) -> np.ndarray:
    """Repeat every pixel ``scale`` times along the last two axes (the raw map shown on
    the fine grid; conserves the mean).

    Parameters
    ----------
    x : ndarray, shape (..., h, w)
    scale : int

    Returns
    -------
    ndarray, shape (..., h * scale, w * scale)
    """
    scale = _check_scale(scale)
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (..., h, w), got shape {x.shape}")
    return np.repeat(np.repeat(x, scale, axis=-2), scale, axis=-1)


def trilinear_upsample(volume: np.ndarray, scale: int) -> np.ndarray:
    """Trilinear upsampling of a ``(Z, Y, X)`` volume by an integer factor
    (``torch.nn.functional.interpolate(mode="trilinear", align_corners=False)``), to
    compare a coarse reconstruction with the truth on the truth's grid."""
    scale = _check_scale(scale)
    v = np.asarray(volume)
    if v.ndim != 3:
        raise ValueError(f"volume must be 3-D (Z, Y, X), got shape {v.shape}")
    if scale == 1:
        return v
    t = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))[None, None]
    return F.interpolate(t, scale_factor=scale, mode="trilinear", align_corners=False).numpy()[0, 0]


def bicubic_upsample(x: ArrayLike, scale: int) -> ArrayLike:
    """Bicubic upsampling by an integer factor (the baseline).

    Parameters
    ----------
    x : ndarray or torch.Tensor, shape (..., h, w)
        Low-resolution map(s); any number of leading dimensions.
    scale : int
        Integer upsampling factor (>= 1).

    Returns
    -------
    up : same type and dtype as ``x``, shape (..., h*scale, w*scale)
        ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)``.
    """
    scale = _check_scale(scale)
    is_numpy = isinstance(x, np.ndarray)
    if not is_numpy and not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (..., h, w), got shape {tuple(x.shape)}")
    if is_numpy:
        orig_dtype = x.dtype
        work_dtype = np.float64 if x.dtype == np.float64 else np.float32
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=work_dtype))
    else:
        orig_dtype = x.dtype
        t = x if x.is_floating_point() else x.to(torch.float32)
    lead = t.shape[:-2]
    h, w = t.shape[-2:]
    flat = t.reshape(-1, 1, h, w)
    if scale == 1:
        up = flat.clone()
    else:
        up = F.interpolate(flat, scale_factor=scale, mode="bicubic", align_corners=False)
    up = up.reshape(*lead, h * scale, w * scale)
    if is_numpy:
        out = up.numpy()
        return out.astype(orig_dtype, copy=False) if np.issubdtype(orig_dtype, np.floating) else out
    return up.to(orig_dtype) if x.is_floating_point() else up
