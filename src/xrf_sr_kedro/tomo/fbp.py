"""Filtered back-projection with the matched back-projector of :mod:`.projector`."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from xrf_sr_kedro.device import default_device

from .angles import as_angles_deg
from .projector import ParallelBeamProjector

__all__ = ["fbp", "ramp_filter", "FILTERS"]

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
FilterName = Literal["ramp", "shepp-logan", "cosine", "hamming", "hann"]


def ramp_filter(n_pad: int, filter_name: str = "ramp") -> np.ndarray:
    """Frequency response (length ``n_pad``, FFT order) of the windowed ramp filter.

    The ramp is the DFT of the band-limited spatial ramp (Kak & Slaney, eq. 61),
    which avoids the DC offset of a sampled ``|f|``; its response is ``|f|`` in
    cycles per detector pixel.  Windows follow scikit-image's ``iradon``.
    """
    if filter_name not in FILTERS:
        raise ValueError(f"filter_name must be one of {FILTERS}, got {filter_name!r}")
    k = np.concatenate((np.arange(1, n_pad // 2 + 1, 2), np.arange(n_pad // 2 - 1, 0, -2)))
    f = np.zeros(n_pad)
    f[0] = 0.25
    f[1::2] = -1.0 / (np.pi * k) ** 2
    resp = np.real(np.fft.fft(f))
    if filter_name == "shepp-logan":
        omega = np.pi * np.fft.fftfreq(n_pad)[1:]
        resp[1:] *= np.sin(omega) / omega
    elif filter_name == "cosine":
        resp *= np.fft.fftshift(np.sin(np.linspace(0, np.pi, n_pad, endpoint=False)))
    elif filter_name == "hamming":
        resp *= np.fft.fftshift(np.hamming(n_pad))
    elif filter_name == "hann":
        resp *= np.fft.fftshift(np.hanning(n_pad))
    return resp


def fbp(
    sino: Any,
    angles_deg: Any,
    n: int | None = None,
    filter_name: FilterName = "ramp",
    center_offset_px: float = 0.0,
    device: str | torch.device | None = None,
    projector: ParallelBeamProjector | None = None,
) -> torch.Tensor:
    """Filtered back-projection of parallel-beam sinograms.

    Parameters
    ----------
    sino : ndarray or Tensor, shape (n_slices, n_angles, n_det)
        Line integrals (e.g. ``-log`` transmission or XRF counts).
    angles_deg : array_like, shape (n_angles,)
        Angles in degrees; they should cover 180 degrees evenly (or 360).
    n : int, optional
        Edge of the reconstructed slices in voxels (default ``n_det``).
    filter_name : {"ramp", "shepp-logan", "cosine", "hamming", "hann"}
    center_offset_px : float
        Rotation axis offset from the detector centre, pixels.
    device : optional
        Default ``cuda`` if available else ``cpu``.
    projector : ParallelBeamProjector, optional
        Reuse an existing projector (its geometry must match).

    Returns
    -------
    Tensor, shape (n_slices, n, n), on ``device``.
    """
    angles = as_angles_deg(angles_deg)
    s = torch.as_tensor(sino)
    if s.ndim != 3:
        raise ValueError(f"sino must be 3-D (n_slices, n_angles, n_det), got shape {tuple(s.shape)}")
    if s.shape[1] != angles.shape[0]:
        raise ValueError(
            f"sino has {s.shape[1]} angles (axis 1) but angles_deg has {angles.shape[0]}"
        )
    if filter_name not in FILTERS:
        raise ValueError(f"filter_name must be one of {FILTERS}, got {filter_name!r}")
    n_det = int(s.shape[2])
    n = n_det if n is None else int(n)
    if projector is None:
        dtype = torch.float64 if s.dtype == torch.float64 else torch.float32
        projector = ParallelBeamProjector(
            n, angles, n_det=n_det, center_offset_px=center_offset_px,
            device=device if device is not None else default_device(), dtype=dtype,
        )
    s = s.to(device=projector.device, dtype=projector.dtype)
    n_pad = max(64, int(2 ** math.ceil(math.log2(2 * n_det))))
    resp = torch.as_tensor(ramp_filter(n_pad, filter_name), device=s.device, dtype=s.dtype)
    spec = torch.fft.fft(s, n=n_pad, dim=-1) * resp
    filtered = torch.fft.ifft(spec, dim=-1).real[..., :n_det].contiguous()
    # Angular weight d(theta) = pi / n_angles for even 180-degree coverage; a
    # 360-degree scan measures every line twice, which gives the same weight.
    return projector.adjoint(filtered) * (math.pi / angles.shape[0])
