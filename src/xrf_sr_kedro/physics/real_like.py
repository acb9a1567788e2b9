"""A simulated real-like XRF tomography measurement, written as beamline files.

What a beamline hands over, with every nuisance of issue 16 and a known truth:

* a two-element phantom (``Mn_K`` and ``Fe_K``: Mn K-beta at 6.49 keV overlaps
  Fe K-alpha at 6.40 keV), features inside the field of view at every angle;
* the rotation axis ``center_offset_px`` off the detector centre;
* random per-projection shifts in both axes (``shift_rms_px`` each), with the
  components no alignment can see removed (a constant vertical shift, and
  horizontal ``c + a sin + b cos``: a centre change or a sample translation; see
  :mod:`xrf_sr_kedro.tomo.align`), so the truth is defined;
* a per-angle incident-flux (I0) drift (slow decay plus jitter), recorded in a
  scaler ``US_IC`` beside a ring current ``SRcurrent``;
* full per-pixel spectra (Gaussian lines from xraylib, flat background,
  Poisson counts), one HDF5 file per angle in the layout of :mod:`xrf_sr_kedro.io.spectra`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy import ndimage

from xrf_sr_kedro.io.atomic import atomic_path
from xrf_sr_kedro.io.spectra import EnergyCalibration, line_shapes
from xrf_sr_kedro.tomo.align import rigid_components
from xrf_sr_kedro.tomo.reproject import reproject

logger = logging.getLogger(__name__)

__all__ = [
    "RealLikeMeasurement",
    "real_like_phantom",
    "simulate_real_like",
    "write_real_like_files",
]

ELEMENTS = ("Mn_K", "Fe_K")
CALIBRATION = EnergyCalibration(offset_kev=5.0, slope_kev=0.02)  # 5.0-7.54 keV over 128 channels
N_CHANNELS = 128


@dataclass(frozen=True)
class RealLikeMeasurement:
    """The truth and the simulated measurement.

    Attributes
    ----------
    truth : ndarray, shape (n_elements, n_rows, n_det, n_det)
        Concentration per voxel (the reconstruction grid, centred on the axis).
    angles_deg : ndarray, shape (n_angles,)
    center_offset_px : float
    shifts_px : ndarray, shape (n_angles, 2)
        ``(dy, dx)`` displacement of each measured projection.
    i0 : ndarray, shape (n_angles,)
        Relative incident flux of each projection (mean 1).
    line_counts : ndarray, shape (n_elements, n_angles, n_rows, n_det)
        Expected counts of each line family (shifted, I0-scaled, before noise).
    aligned_counts : ndarray
        The same without shifts and with I0 = 1 (the "perfectly aligned" data).
    pixel_size_nm : float
    """

    truth: np.ndarray
    angles_deg: np.ndarray
    center_offset_px: float
    shifts_px: np.ndarray
    i0: np.ndarray
    line_counts: np.ndarray
    aligned_counts: np.ndarray
    pixel_size_nm: float


def real_like_phantom(n_det: int, n_rows: int, radius_px: float, seed: int = 0) -> np.ndarray:
    """Two-element phantom ``(2, n_rows, n_det, n_det)``: discs and rods inside ``radius_px``.

    Features occupy rows ``n_rows // 4 .. 3 n_rows // 4`` so vertical shifts keep
    them in the field; Mn and Fe share some features and not others.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n_det, :n_det] + 0.5 - n_det / 2
    vol = np.zeros((2, n_rows, n_det, n_det), np.float32)
    r0, r1 = n_rows // 4, (3 * n_rows) // 4
    vol[:, r0:r1][..., (yy**2 + xx**2) < radius_px**2] = 0.05  # matrix
    for k in range(12):
        rad = rng.uniform(0.12, 0.3) * radius_px
        dist = rng.uniform(0, radius_px - rad - 1)
        phi = rng.uniform(0, 2 * np.pi)
        disc = (yy - dist * np.sin(phi)) ** 2 + (xx - dist * np.cos(phi)) ** 2 < rad**2
        z0 = int(rng.integers(r0, r1 - 1))
        z1 = int(min(r1, z0 + rng.integers(2, max(3, r1 - r0))))
        weights = [(1.0, 0.4), (0.1, 1.0), (0.8, 0.8)][k % 3]
        for e in range(2):
            vol[e, z0:z1][:, disc] += weights[e] * rng.uniform(0.6, 1.0)
    return vol


def simulate_real_like(
    n_det: int = 96,
    n_rows: int = 16,
    n_angles: int = 36,
    center_offset_px: float = 20.0,
    shift_rms_px: float = 2.0,
    i0_drift: float = 0.3,
    peak_counts: float = 400.0,
    pixel_size_nm: float = 100.0,
    seed: int = 0,
) -> RealLikeMeasurement:
    """Expected line counts of the real-like measurement (module docstring).

    ``peak_counts`` is the largest expected count of a line family in a pixel of
    an aligned projection at mean flux. Angles are ``n_angles`` evenly over
    [0, 180) (no 180-degree pairs).
    """
    rng = np.random.default_rng(seed)
    radius = n_det / 2 - abs(center_offset_px) - 4 * shift_rms_px - 2
    if radius < 6:
        raise ValueError(
            f"n_det={n_det} leaves no room for a sample with a {center_offset_px} px centre "
            f"offset and {shift_rms_px} px shifts; use a wider detector"
        )
    truth = real_like_phantom(n_det, n_rows, radius, seed)
    angles = np.arange(n_angles) * 180.0 / n_angles
    proj = np.stack(
        [
            reproject(v, angles, center_offset_px=center_offset_px, device="cpu", progress=False)
            for v in truth
        ]
    )
    proj *= peak_counts / proj.max()
    shifts = rng.normal(0.0, shift_rms_px, (n_angles, 2))
    shifts[:, 0] -= shifts[:, 0].mean()
    shifts[:, 1] -= rigid_components(shifts[:, 1], angles)
    i0 = (1.0 - i0_drift * np.arange(n_angles) / n_angles) * rng.uniform(0.95, 1.05, n_angles)
    i0 /= i0.mean()
    moved = np.stack(
        [[ndimage.shift(f, s, order=3, mode="constant") for f, s in zip(el, shifts)] for el in proj]
    )
    moved = np.clip(moved, 0, None) * i0[None, :, None, None]
    return RealLikeMeasurement(
        truth=truth, angles_deg=angles, center_offset_px=float(center_offset_px),
        shifts_px=shifts, i0=i0, line_counts=moved, aligned_counts=proj,
        pixel_size_nm=float(pixel_size_nm),
    )


def poisson_spectra(
    line_counts: np.ndarray, background: float, rng: np.random.Generator
) -> np.ndarray:
    """Poisson spectra ``(..., N_CHANNELS)`` of expected line counts ``(n_elements, ...)``."""
    shapes = line_shapes(ELEMENTS, CALIBRATION.energies_kev(N_CHANNELS), 150.0)
    mean = np.tensordot(np.moveaxis(line_counts, 0, -1), shapes, axes=1) + background
    return rng.poisson(mean).astype(np.int32)


def write_real_like_files(
    m: RealLikeMeasurement, folder: str | os.PathLike, background: float = 0.5, seed: int = 1,
    i0_counts: float = 1e5, perfectly_aligned: bool = False,
) -> list[Path]:
    """Write one spectra HDF5 file per angle (``scan_<k>.h5``) into ``folder``; return the paths.

    ``perfectly_aligned=True`` writes the reference measurement: no shifts and a
    constant I0 (same spectra model and noise level).
    """
    rng = np.random.default_rng(seed)
    counts = m.aligned_counts if perfectly_aligned else m.line_counts
    i0 = np.ones_like(m.i0) if perfectly_aligned else m.i0
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    n_rows, n_det = m.line_counts.shape[2:]
    for k, theta in enumerate(m.angles_deg):
        spectra = poisson_spectra(counts[:, k], background, rng)
        i0_map = rng.normal(i0_counts * i0[k], 0.002 * i0_counts, (n_rows, n_det))
        path = out / f"scan_{k:03d}.h5"
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            d = f.create_dataset("spectra", data=spectra, compression="gzip", compression_opts=1)
            d.attrs.update(
                energy_offset_kev=CALIBRATION.offset_kev, energy_slope_kev=CALIBRATION.slope_kev,
                theta_deg=float(theta), pixel_size_y_nm=m.pixel_size_nm,
                pixel_size_x_nm=m.pixel_size_nm,
            )
            f["scalers"] = np.stack([i0_map, np.full((n_rows, n_det), 100.0)]).astype(np.float32)
            f["scaler_names"] = np.array([b"US_IC", b"SRcurrent"])
        paths.append(path)
    logger.info("wrote %d spectra files (%d x %d px, %d channels) to %s",
                len(paths), n_rows, n_det, N_CHANNELS, out)
    return paths
