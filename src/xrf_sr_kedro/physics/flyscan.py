"""The fly-scan forward model of XRF microscopy (Eq. 1 of the paper).

A sample map ``x`` on a fine grid (pixel size ``p``) is scanned with a step of
``s = step_px`` fine pixels.  The value recorded for one scan point is the sample
weighted by the probe intensity (a correlation), averaged over the probe's continuous
motion across one step along the fast axis, and sampled once per step::

    y[i, j] = 1/n * sum_m sum_{a, b} P[a, b] * x[r(i, m) + a, c(j, m) + b]

Alignment convention
--------------------
* Low-resolution (LR) pixel ``(i, j)`` covers the high-resolution (HR) *step window*
  rows ``i*s .. i*s + s - 1`` and columns ``j*s .. j*s + s - 1``; its centre is at
  HR coordinate ``(i*s + (s-1)/2, j*s + (s-1)/2)`` (HR pixel centres sit on integer
  coordinates).  This is the convention of area downsampling and of pixel shuffle.
* The probe's centre is its geometric centre, ``((ph-1)/2, (pw-1)/2)`` in probe
  pixels (between two pixels for an even size).
* Along the slow axis the probe centre sits on the window centre.  Along the fast
  axis it takes ``n = n_substeps`` positions at the midpoints of ``n`` equal
  sub-intervals of the step, ``centre - s/2 + (m + 1/2) * s/n`` for ``m = 0..n-1``,
  whose mean is the window centre.  ``mode="step"`` is ``n = 1`` (no motion blur).
* A probe placed at a fractional position is the linear interpolation of the two
  nearest integer placements (per axis).  With an even probe, ``n = s`` and the
  default fly mode this gives the motion kernel ``[1/2, 1, ..., 1, 1/2] / s`` along
  the fast axis, the pixel-area discretisation of continuous motion across one step;
  in step mode an even probe with an even step needs no interpolation at all.
* Borders: the sample is zero outside the image (zero padding).  Tomographic
  projections are surrounded by air, so this is also the physical convention; a
  constant image is reproduced exactly only where the kernel does not reach the
  border.

The combined kernel ``K`` (probe convolved with the motion weights, see
:func:`flyscan_kernel`) has a size ``(kh, kw)`` with ``kh - s`` and ``kw - s`` even and
its geometric centre on the window centre, so that::

    y[i, j] = sum_{u, v} K[u, v] * x[i*s + u - (kh - s)//2, j*s + v - (kw - s)//2]

A point source at HR pixel ``(y0, x0)`` therefore appears in the LR map as
``y[i, j] = K[y0 - i*s + (kh - s)//2, x0 - j*s + (kw - s)//2]`` (zero where the
index falls outside ``K``).

The model is evaluated as one FFT correlation with ``K`` whose spectrum is folded
(aliased) by ``s`` along the rows before the inverse transform, so only the sampled
rows are ever computed; numpy input uses :mod:`scipy.fft` (multi-threaded), torch
input uses :mod:`torch.fft` and is differentiable with respect to the images.
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from typing import Literal

import numpy as np
import scipy.fft as sfft

try:  # torch is a dependency of the project, but keep the numpy path importable alone
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

FastAxis = Literal["x", "y"]
ScanMode = Literal["fly", "step"]

_WORKERS = max(1, min(os.cpu_count() or 1, 8))
_SPECTRUM_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_SPECTRUM_CACHE_SIZE = 8
# CPU tensors go through scipy.fft (faster than torch.fft on CPU) with an exact-adjoint
# backward; tests switch this off to exercise the torch.fft path used on GPUs.
_TORCH_CPU_VIA_SCIPY = True


# --------------------------------------------------------------------------- validation


def _is_torch(a: object) -> bool:
    return torch is not None and isinstance(a, torch.Tensor)


def _probe_to_numpy(probe: object) -> np.ndarray:
    if _is_torch(probe):
        probe = probe.detach().cpu().numpy()  # type: ignore[union-attr]
    elif hasattr(probe, "intensity") and hasattr(probe, "pixel_size_nm"):
        probe = probe.intensity  # a ProbeIntensity
    p = np.asarray(probe, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probe must be 2-D, got shape {p.shape}")
    if p.size == 0 or not np.all(np.isfinite(p)):
        raise ValueError("probe must be non-empty and finite")
    return p


def _check_scan_args(
    step_px: int, fast_axis: str, mode: str, n_substeps: int | None
) -> tuple[int, int]:
    if isinstance(step_px, bool) or int(step_px) != step_px or step_px < 1:
        raise ValueError(f"step_px must be a positive integer, got {step_px!r}")
    if fast_axis not in ("x", "y"):
        raise ValueError(f"fast_axis must be 'x' or 'y', got {fast_axis!r}")
    if mode not in ("fly", "step"):
        raise ValueError(f"mode must be 'fly' or 'step', got {mode!r}")
    step_px = int(step_px)
    if mode == "step":
        if n_substeps not in (None, 1):
            raise ValueError(f"mode='step' has no sub-steps; got n_substeps={n_substeps!r}")
        return step_px, 1
    if n_substeps is None:
        n_substeps = step_px
    if isinstance(n_substeps, bool) or int(n_substeps) != n_substeps or n_substeps < 1:
        raise ValueError(f"n_substeps must be a positive integer or None, got {n_substeps!r}")
    return step_px, int(n_substeps)


# --------------------------------------------------------------------------- kernel


def _placement_weights(offsets: np.ndarray, weights: np.ndarray) -> dict[int, float]:
    """Split fractional placements into integer ones by linear interpolation."""
    out: dict[int, float] = {}
    for off, w in zip(offsets, weights):
        lo = math.floor(off + 1e-9)
        frac = off - lo
        if frac < 1e-9:
            frac = 0.0
        out[lo] = out.get(lo, 0.0) + w * (1.0 - frac)
        if frac > 0.0:
            out[lo + 1] = out.get(lo + 1, 0.0) + w * frac
    return out


def _axis_motion(probe_len: int, step_px: int, n_positions: int) -> dict[int, float]:
    """Integer offsets (of the probe's first pixel relative to the window start ``i*s``)
    and their weights for ``n_positions`` sub-step positions along one axis."""
    s, n = step_px, n_positions
    centre = (s - 1) / 2.0
    pos = centre - s / 2.0 + (np.arange(n) + 0.5) * s / n
    if n == 1:
        pos = np.array([centre])
    offsets = pos - (probe_len - 1) / 2.0
    return _placement_weights(offsets, np.full(n, 1.0 / n))


def _kernel_and_origin(
    probe: np.ndarray, step_px: int, fast_axis: str, n_substeps: int
) -> np.ndarray:
    ph, pw = probe.shape
    s = step_px
    my = _axis_motion(ph, s, n_substeps if fast_axis == "y" else 1)
    mx = _axis_motion(pw, s, n_substeps if fast_axis == "x" else 1)

    def extent(motion: dict[int, float], plen: int) -> tuple[int, int, int]:
        o_min = min(motion)
        o_max = max(motion) + plen - 1
        k = max(s - 2 * o_min, 2 * o_max + 2 - s, 1)
        if (k - s) % 2:
            k += 1
        first = (s - k) // 2  # offset of kernel index 0 relative to the window start
        return k, first, o_min

    kh, fy, _ = extent(my, ph)
    kw, fx, _ = extent(mx, pw)
    wy = np.zeros(kh)
    for o, w in my.items():
        wy[o - fy] += w
    wx = np.zeros(kw)
    for o, w in mx.items():
        wx[o - fx] += w
    # K[u, v] = sum_{oy, ox} wy[oy] wx[ox] P[u - oy, v - ox]  (full convolution, cropped)
    kern = np.zeros((kh, kw))
    for oy in np.nonzero(wy)[0]:
        for ox in np.nonzero(wx)[0]:
            kern[oy : oy + ph, ox : ox + pw] += wy[oy] * wx[ox] * probe
    return kern


def flyscan_kernel(
    probe: np.ndarray,
    step_px: int,
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
    n_substeps: int | None = None,
) -> np.ndarray:
    """The combined (probe x motion) kernel of the fly-scan model.

    Parameters
    ----------
    probe : ndarray (h, w) or torch.Tensor or ProbeIntensity
        Probe intensity on the HR grid (not renormalised here).
    step_px : int
        Scan step in HR pixels.
    fast_axis : {"x", "y"}
        Direction of continuous motion: ``"x"`` along columns (last axis).
    mode : {"fly", "step"}
    n_substeps : int, optional
        Number of probe positions averaged across one step (default ``step_px``).

    Returns
    -------
    kernel : ndarray (kh, kw), float64
        ``kh - step_px`` and ``kw - step_px`` are even and the kernel's geometric
        centre sits on the step window's centre (see the module docstring).  It sums
        to the probe's sum.
    """
    p = _probe_to_numpy(probe)
    s, n = _check_scan_args(step_px, fast_axis, mode, n_substeps)
    return _kernel_and_origin(p, s, fast_axis, n)


# --------------------------------------------------------------------------- FFT helpers


def _fft_sizes(
    hr_shape: tuple[int, int], kshape: tuple[int, int], step_px: int
) -> tuple[int, int, int, int, int, int]:
    H, W = hr_shape
    kh, kw = kshape
    s = step_px
    h, w = H // s, W // s
    py, px = (kh - s) // 2, (kw - s) // 2
    # no wrap-around of the image onto the sampled outputs, and room for the whole
    # kernel: a probe larger than the map (kh > H) is still exact
    need_h = max(H + py, (h - 1) * s + kh - py, kh, 1)
    need_w = max(W + px, (w - 1) * s + kw - px, kw, 1)
    L_h = s * sfft.next_fast_len(-(-need_h // s))
    L_w = sfft.next_fast_len(need_w, real=True)
    return h, w, py, px, L_h, L_w


def _circular_kernel(kern: np.ndarray, L_h: int, L_w: int, py: int, px: int) -> np.ndarray:
    """Kernel placed so that circular convolution with it gives the correlation
    ``c[y] = sum_u K[u] x[y + u - py]`` (same along columns)."""
    kh, kw = kern.shape
    g = np.zeros((L_h, L_w))
    g[:kh, :kw] = kern[::-1, ::-1]
    return np.roll(g, (-(kh - 1 - py), -(kw - 1 - px)), axis=(0, 1))


def _kernel_spectrum(
    kern: np.ndarray, L_h: int, L_w: int, py: int, px: int, dtype: np.dtype
) -> np.ndarray:
    key = (kern.shape, hash(kern.tobytes()), L_h, L_w, py, px, np.dtype(dtype).str)
    hit = _SPECTRUM_CACHE.get(key)
    if hit is not None:
        _SPECTRUM_CACHE.move_to_end(key)
        return hit
    g = _circular_kernel(kern, L_h, L_w, py, px)
    spec = sfft.rfft2(g, workers=_WORKERS)
    cdtype = np.complex64 if np.dtype(dtype) == np.float32 else np.complex128
    spec = spec.astype(cdtype)
    _SPECTRUM_CACHE[key] = spec
    if len(_SPECTRUM_CACHE) > _SPECTRUM_CACHE_SIZE:
        _SPECTRUM_CACHE.popitem(last=False)
    return spec


def _as_batch(images: object) -> tuple[object, tuple[int, ...], bool]:
    is_t = _is_torch(images)
    if not is_t:
        images = np.asarray(images)
    shape = tuple(images.shape)  # type: ignore[union-attr]
    if len(shape) < 2:
        raise ValueError(f"images must have shape (..., H, W), got shape {shape}")
    return images, shape, is_t


def _forward_numpy(x: np.ndarray, kern: np.ndarray, s: int) -> np.ndarray:
    """(B, H, W) -> (B, H//s, W//s) float32 (computed in x's precision)."""
    H, W = x.shape[-2:]
    h, w, py, px, L_h, L_w = _fft_sizes((H, W), kern.shape, s)
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    x = x.astype(dtype, copy=False)
    G = _kernel_spectrum(kern, L_h, L_w, py, px, dtype)
    X = sfft.rfft(x, n=L_w, axis=-1, workers=_WORKERS)
    X = sfft.fft(X, n=L_h, axis=-2, workers=_WORKERS, overwrite_x=True)
    X *= G
    Z = X.reshape(X.shape[0], s, L_h // s, X.shape[-1]).mean(axis=1)
    z = sfft.ifft(Z, axis=-2, workers=_WORKERS, overwrite_x=True)
    y = sfft.irfft(z[:, :h], n=L_w, axis=-1, workers=_WORKERS)
    return np.ascontiguousarray(y[:, :, : (w - 1) * s + 1 : s], dtype=np.float32)


def _adjoint_numpy(y: np.ndarray, kern: np.ndarray, s: int, hr_shape: tuple[int, int]
                   ) -> np.ndarray:
    """(B, h, w) -> (B, H, W) float32."""
    H, W = hr_shape
    h, w, py, px, L_h, L_w = _fft_sizes((H, W), kern.shape, s)
    dtype = np.float64 if y.dtype == np.float64 else np.float32
    z = np.zeros((y.shape[0], L_h, L_w), dtype=dtype)
    z[:, : (h - 1) * s + 1 : s, : (w - 1) * s + 1 : s] = y
    G = _kernel_spectrum(kern, L_h, L_w, py, px, dtype)
    Zf = sfft.rfft2(z, workers=_WORKERS)
    Zf *= G.conj()
    r = sfft.irfft2(Zf, s=(L_h, L_w), workers=_WORKERS)
    return np.ascontiguousarray(r[:, :H, :W], dtype=np.float32)


if torch is not None:

    class _FlyscanCPU(torch.autograd.Function):
        """Forward on CPU through scipy.fft; backward is the exact adjoint."""

        @staticmethod
        def forward(ctx, x, kern, s, hr_shape):  # type: ignore[override]
            ctx.kern, ctx.s, ctx.hr_shape, ctx.dtype = kern, s, hr_shape, x.dtype
            return torch.from_numpy(_forward_numpy(x.detach().numpy(), kern, s))

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, grad):  # type: ignore[override]
            g = _adjoint_numpy(grad.detach().numpy(), ctx.kern, ctx.s, ctx.hr_shape)
            return torch.from_numpy(g).to(ctx.dtype), None, None, None


# --------------------------------------------------------------------------- public API


def flyscan(
    images: np.ndarray | torch.Tensor,
    probe: np.ndarray | torch.Tensor,
    step_px: int,
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
    n_substeps: int | None = None,
) -> np.ndarray | torch.Tensor:
    """Simulate a fly (or step) scan of ``images`` with ``probe`` (Eq. 1).

    Parameters
    ----------
    images : ndarray or torch.Tensor, shape (..., H, W)
        Sample maps on the probe's pixel grid.  Torch tensors stay on their device and
        the result is differentiable with respect to them (e.g. a batch (N, 1, H, W)).
    probe : ndarray or torch.Tensor (ph, pw), or ProbeIntensity
        Probe intensity on the same grid; use a unit-sum probe to conserve the mean.
    step_px : int
        Scan step in HR pixels (30 nm / 7.5 nm = 4 in the paper).
    fast_axis : {"x", "y"}
        ``"x"``: the probe moves along the columns (last axis) during a step.
    mode : {"fly", "step"}
        ``"step"`` is a step scan without motion blur.
    n_substeps : int, optional
        Probe positions averaged over one step; default ``step_px``.

    Returns
    -------
    lr : same type as ``images``, float32, shape (..., H // step_px, W // step_px)
        See the module docstring for the exact alignment and border convention.
    """
    images, shape, is_t = _as_batch(images)
    kern = flyscan_kernel(probe, step_px, fast_axis, mode, n_substeps)
    s = int(step_px)
    H, W = shape[-2:]
    if H < s or W < s:
        raise ValueError(f"images ({H}x{W}) must be at least one step ({s} px) on each side")
    h, w, py, px, L_h, L_w = _fft_sizes((H, W), kern.shape, s)
    lead = shape[:-2]
    if is_t and images.device.type == "cpu" and _TORCH_CPU_VIA_SCIPY:  # type: ignore[union-attr]
        # pocketfft via scipy is several times faster than torch.fft on CPU; the
        # gradient is the exact adjoint
        x = images.reshape(-1, H, W)  # type: ignore[union-attr]
        if x.dtype not in (torch.float32, torch.float64):
            x = x.float()
        y = _FlyscanCPU.apply(x, kern, s, (H, W))
        return y.reshape(*lead, h, w)
    if is_t:
        x = images.reshape(-1, H, W)  # type: ignore[union-attr]
        if x.dtype not in (torch.float32, torch.float64):
            x = x.float()
        spec = _kernel_spectrum(kern, L_h, L_w, py, px, np.float64)
        G = torch.as_tensor(spec, device=x.device)
        G = G.to(torch.complex64 if x.dtype == torch.float32 else torch.complex128)
        X = torch.fft.rfft(x, n=L_w, dim=-1)
        X = torch.fft.fft(X, n=L_h, dim=-2)
        Z = (X * G).reshape(X.shape[0], s, L_h // s, X.shape[-1]).mean(dim=1)
        z = torch.fft.ifft(Z, dim=-2)
        y = torch.fft.irfft(z, n=L_w, dim=-1)
        y = y[:, :h, : (w - 1) * s + 1 : s]
        return y.reshape(*lead, h, w).to(torch.float32)

    x = images.reshape(-1, H, W)  # type: ignore[union-attr]
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    return _forward_numpy(x, kern, s).reshape(*lead, h, w)


def flyscan_adjoint(
    lr: np.ndarray | torch.Tensor,
    probe: np.ndarray | torch.Tensor,
    step_px: int,
    hr_shape: tuple[int, int],
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
    n_substeps: int | None = None,
) -> np.ndarray | torch.Tensor:
    """Exact adjoint (transpose) of :func:`flyscan` for images of shape ``hr_shape``.

    Parameters
    ----------
    lr : ndarray or torch.Tensor, shape (..., H // step_px, W // step_px)
    probe, step_px, fast_axis, mode, n_substeps
        As for :func:`flyscan`.
    hr_shape : (H, W)
        Shape of the HR images the forward model was applied to.

    Returns
    -------
    hr : same type as ``lr``, float32, shape (..., H, W)
        ``<flyscan(x), y> == <x, flyscan_adjoint(y)>`` for all ``x``, ``y``.
    """
    lr, shape, is_t = _as_batch(lr)
    if len(hr_shape) != 2:
        raise ValueError(f"hr_shape must be (H, W), got {hr_shape!r}")
    H, W = int(hr_shape[0]), int(hr_shape[1])
    kern = flyscan_kernel(probe, step_px, fast_axis, mode, n_substeps)
    s = int(step_px)
    h, w, py, px, L_h, L_w = _fft_sizes((H, W), kern.shape, s)
    if tuple(shape[-2:]) != (h, w):
        raise ValueError(
            f"lr must have shape (..., {h}, {w}) for hr_shape {(H, W)} and step {s}, "
            f"got {shape}"
        )
    lead = shape[:-2]
    if (
        is_t
        and lr.device.type == "cpu"  # type: ignore[union-attr]
        and not lr.requires_grad  # type: ignore[union-attr]
        and _TORCH_CPU_VIA_SCIPY
    ):
        y = lr.detach().reshape(-1, h, w).numpy()  # type: ignore[union-attr]
        if y.dtype not in (np.float32, np.float64):
            y = y.astype(np.float32)
        return torch.from_numpy(_adjoint_numpy(y, kern, s, (H, W))).reshape(*lead, H, W)
    if is_t:
        y = lr.reshape(-1, h, w)  # type: ignore[union-attr]
        if y.dtype not in (torch.float32, torch.float64):
            y = y.float()
        z = torch.zeros((y.shape[0], L_h, L_w), dtype=y.dtype, device=y.device)
        z[:, : (h - 1) * s + 1 : s, : (w - 1) * s + 1 : s] = y
        spec = _kernel_spectrum(kern, L_h, L_w, py, px, np.float64)
        G = torch.as_tensor(spec, device=y.device)
        G = G.to(torch.complex64 if y.dtype == torch.float32 else torch.complex128)
        r = torch.fft.irfft2(torch.fft.rfft2(z) * G.conj(), s=(L_h, L_w))
        return r[:, :H, :W].reshape(*lead, H, W).to(torch.float32)

    y = lr.reshape(-1, h, w)  # type: ignore[union-attr]
    return _adjoint_numpy(y, kern, s, (H, W)).reshape(*lead, H, W)
