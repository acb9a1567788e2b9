"""Per-pixel fluorescence spectra in, element maps (XRFStack) out.

Files (one per angle, or one holding every angle with ``spectra`` of shape
``(n_angles, H, W, n_channels)``):

* HDF5: dataset ``spectra`` ``(H, W, n_channels)`` (or ``key``); attributes on it
  or on the root: ``energy_offset_kev``, ``energy_slope_kev``,
  ``energy_quadratic_kev`` (optional), ``theta_deg``, ``pixel_size_y_nm``,
  ``pixel_size_x_nm``; optional datasets ``scalers`` ``(n, H, W)`` (or
  ``(n_angles, n, H, W)``) and ``scaler_names``; ``theta_deg`` as a dataset of
  one angle a frame for one-file stacks.
* ``.npz``: arrays with the same names. ``.npy``: the spectra alone (the
  calibration and the pixel size must then be given).

Energy of channel ``i``: ``E = offset + slope * i + quadratic * i**2`` (keV),
arguments overriding the file. Each element line (``Zn_K``) becomes a map by

* ``method="fit"`` (default): a linear least-squares fit, at every pixel, of the
  spectrum between the lowest and highest line (+- 3 FWHM) by one peak shape per
  element (its K-alpha1/alpha2/beta1 (or L, M) lines from xraylib 4.3.0, rate
  weighted, Gaussian of the detector's FWHM) plus a constant and a linear
  background. Overlapping lines (Mn K-beta on Fe K-alpha) are shared out
  correctly; the map is the fitted counts of the whole line family.
* ``method="window"``: the counts in ``principal energy +- window_fwhm * FWHM / 2``
  (the classical ROI; overlapping lines leak into each other).

Detector resolution: ``FWHM(E) = sqrt(fwhm_ev**2 + 2.355**2 * 3.85 eV * F * (E -
5.9 keV))`` with Fano factor ``F = 0.114``, so ``fwhm_ev`` is the FWHM at Mn K-alpha.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xrf_sr_kedro.io.frames import Frame, frames_to_stack, select_i0
from xrf_sr_kedro.io.hdf5 import DataFormatError, decode_names, require_file
from xrf_sr_kedro.io.lines import emission_line
from xrf_sr_kedro.types import XRFStack

logger = logging.getLogger(__name__)

__all__ = [
    "EnergyCalibration",
    "element_maps_from_spectra",
    "line_shapes",
    "read_spectra",
]


@dataclass(frozen=True)
class EnergyCalibration:
    """``E(i) = offset_kev + slope_kev * i + quadratic_kev * i**2`` for channel ``i``."""

    offset_kev: float
    slope_kev: float
    quadratic_kev: float = 0.0

    def energies_kev(self, n_channels: int) -> np.ndarray:
        i = np.arange(int(n_channels), dtype=np.float64)
        return self.offset_kev + self.slope_kev * i + self.quadratic_kev * i**2


def _fwhm_kev(energy_kev: np.ndarray | float, fwhm_ev: float) -> np.ndarray:
    e = np.asarray(energy_kev, dtype=np.float64)
    # FWHM^2 [eV^2] = fwhm_ev^2 + 2.355^2 * 3.85 eV * F * (E - 5900 eV), here in keV^2
    var = (fwhm_ev / 1000.0) ** 2 + 2.355**2 * 3.85 * 0.114 * (e - 5.9) * 1e-3
    return np.sqrt(np.clip(var, (0.3 * fwhm_ev / 1000.0) ** 2, None))


def line_shapes(
    elements: Sequence[str], energies_kev: np.ndarray, fwhm_ev: float = 150.0
) -> np.ndarray:
    """Peak shape of each line family on the channel grid, ``(n_elements, n_channels)``.

    Each row sums (over channels) to the fraction of the family's photons that
    falls on the grid, i.e. to 1 for lines well inside it; so a fitted amplitude
    is counts of the whole family.
    """
    e = np.asarray(energies_kev, dtype=np.float64)
    width = np.gradient(e)
    shapes = np.zeros((len(elements), e.size))
    for k, name in enumerate(elements):
        for energy, weight in emission_line(name).components:
            sigma = _fwhm_kev(energy, fwhm_ev) / 2.3548
            shapes[k] += weight * width * np.exp(-0.5 * ((e - energy) / sigma) ** 2) / (
                sigma * np.sqrt(2 * np.pi)
            )
    return shapes


def element_maps_from_spectra(
    spectra: np.ndarray,
    calibration: EnergyCalibration,
    elements: Sequence[str],
    method: str = "fit",
    fwhm_ev: float = 150.0,
    window_fwhm: float = 2.0,
) -> np.ndarray:
    """Element maps (counts) from spectra ``(..., n_channels)``; returns ``(n_elements, ...)``.

    Parameters
    ----------
    spectra : ndarray, shape (..., n_channels)
        Counts per channel.
    calibration : EnergyCalibration
    elements : sequence of str
        ``Zn_K``-style names (energies from xraylib; an unknown name raises).
    method : {"fit", "window"}
        See the module docstring.
    fwhm_ev : float
        Detector FWHM at 5.9 keV, eV.
    window_fwhm : float
        Window width in FWHMs (``method="window"``).
    """
    s = np.asarray(spectra, dtype=np.float64)
    n_ch = s.shape[-1]
    e = calibration.energies_kev(n_ch)
    lines = [emission_line(name) for name in elements]
    for line in lines:
        if not e.min() <= line.energy_kev <= e.max():
            raise ValueError(
                f"element line {line.name} at {line.energy_kev:.3f} keV lies outside the "
                f"calibrated range {e.min():.3f}-{e.max():.3f} keV; check the energy calibration"
            )
    flat = s.reshape(-1, n_ch)
    if method == "window":
        out = []
        for line in lines:
            half = 0.5 * window_fwhm * float(_fwhm_kev(line.energy_kev, fwhm_ev))
            sel = np.abs(e - line.energy_kev) <= half
            out.append(flat[:, sel].sum(axis=1))
        maps = np.stack(out)
    elif method == "fit":
        lo = min(c[0] for line in lines for c in line.components)
        hi = max(c[0] for line in lines for c in line.components)
        pad = 3 * float(_fwhm_kev(hi, fwhm_ev))
        sel = (e >= lo - pad) & (e <= hi + pad)
        shapes = line_shapes(elements, e, fwhm_ev)[:, sel]
        x = (e[sel] - e[sel].mean()) / max(np.ptp(e[sel]), 1e-9)
        design = np.vstack([shapes, np.ones_like(x), x]).T  # (n_sel, n_el + 2)
        coef, *_ = np.linalg.lstsq(design, flat[:, sel].T, rcond=None)
        maps = coef[: len(lines)]
    else:
        raise ValueError(f"method must be 'fit' or 'window', got {method!r}")
    return maps.reshape((len(lines),) + s.shape[:-1])


# ----------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------

_CAL_KEYS = ("energy_offset_kev", "energy_slope_kev", "energy_quadratic_kev")


def _load_arrays(p: Path, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arrays, scalar attributes) of a spectra file, the spectra under ``"spectra"``."""
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return {"spectra": np.load(p, allow_pickle=False)}, {}
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        attrs = {k: arrays.pop(k).item() for k in list(arrays) if arrays[k].ndim == 0}
        if key not in arrays:
            raise DataFormatError(p, key, f"missing; arrays present: {sorted(arrays)}")
        arrays["spectra"] = arrays.pop(key)
        return arrays, attrs
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise DataFormatError(
            p, "/", f"cannot be opened as HDF5 or read as .npz/.npy ({exc})"
        ) from exc
    with f:
        if key not in f:
            names: list[str] = []
            f.visit(names.append)
            raise DataFormatError(p, key, f"missing; datasets present: {names}")
        attrs = {**dict(f.attrs), **dict(f[key].attrs)}
        arrays = {"spectra": f[key][()]}
        for k in ("scalers", "scaler_names", "theta_deg"):
            if k in f:
                arrays[k] = f[k][()]
    return arrays, attrs


def _read_frames(
    p: Path, elements, calibration, i0_scaler, method, fwhm_ev, key
) -> list[Frame]:
    arrays, attrs = _load_arrays(p, key)
    spectra = np.asarray(arrays["spectra"])
    if spectra.ndim not in (3, 4):
        raise DataFormatError(
            p, key, "expected spectra (H, W, n_channels) or (n_angles, H, W, n_channels), "
            f"got {spectra.shape}",
        )
    cal = calibration
    if cal is None:
        if _CAL_KEYS[0] not in attrs or _CAL_KEYS[1] not in attrs:
            raise DataFormatError(
                p, _CAL_KEYS[1], f"no energy calibration in the file (attributes present: "
                f"{sorted(attrs)}); pass calibration=EnergyCalibration(offset_kev, slope_kev)",
            )
        cal = EnergyCalibration(*(float(attrs.get(k, 0.0)) for k in _CAL_KEYS))
    stacked = spectra.ndim == 4
    frames_spec = spectra if stacked else spectra[None]
    n = frames_spec.shape[0]
    scalers = arrays.get("scalers")
    names = decode_names(arrays["scaler_names"]) if "scaler_names" in arrays else None
    theta = arrays.get("theta_deg", attrs.get("theta_deg"))
    theta = None if theta is None else np.atleast_1d(np.asarray(theta, dtype=np.float64))
    if theta is not None and theta.size != n:
        raise DataFormatError(p, "theta_deg", f"{theta.size} angles for {n} frames")
    frames = []
    for k in range(n):
        sc = None if scalers is None else (scalers[k] if stacked else scalers)
        i0 = select_i0(sc, names, i0_scaler, p, "scalers") if (k == 0 or i0_scaler) else None
        maps = element_maps_from_spectra(frames_spec[k], cal, elements, method, fwhm_ev)
        frames.append(
            Frame(
                maps=maps,
                source=f"{p}[{k}]" if stacked else str(p),
                i0=i0,
                angle_deg=None if theta is None else float(theta[k]),
                pixel_size_y_nm=attrs.get("pixel_size_y_nm", attrs.get("pixel_size_nm")),
                pixel_size_x_nm=attrs.get("pixel_size_x_nm", attrs.get("pixel_size_nm")),
                extra={
                    "format": "per-pixel spectra",
                    "element_maps_method": method,
                    "energy_calibration_kev": [cal.offset_kev, cal.slope_kev, cal.quadratic_kev],
                    "detector_fwhm_ev_at_5.9kev": fwhm_ev,
                    "i0_scaler": i0_scaler,
                },
            )
        )
    return frames


def read_spectra(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    elements: Sequence[str],
    calibration: EnergyCalibration | None = None,
    i0_scaler: str | None = None,
    method: str = "fit",
    fwhm_ev: float = 150.0,
    angles_deg: Sequence[float] | None = None,
    pixel_size_nm: float | Sequence[float] | None = None,
    key: str = "spectra",
) -> XRFStack:
    """Element maps from per-pixel spectra files (glob, one path, or a list).

    Parameters
    ----------
    paths
        One file per angle, or one file with every angle (module docstring).
    elements : sequence of str
        ``Zn_K``-style lines; checked against xraylib and the calibrated energy
        range before any spectrum is fitted.
    calibration : EnergyCalibration, optional
        Overrides the file's calibration (required for ``.npy``).
    i0_scaler : str, optional
        Scaler to normalise by; ``None`` logs a warning.
    method, fwhm_ev
        See :func:`element_maps_from_spectra`.
    angles_deg : sequence of float, optional
        One angle a frame in file order, overriding the files.
    pixel_size_nm : float or (y, x), optional
    key : str
        Dataset / array name of the spectra.

    Returns
    -------
    XRFStack
        ``fitted counts`` (``counts`` for ``method="window"``), sorted by angle.
    """
    for name in elements:
        emission_line(name)  # unknown element -> ValueError before reading anything
    if isinstance(paths, (str, os.PathLike)):
        found = sorted(glob.glob(str(paths))) if glob.has_magic(str(paths)) else [str(paths)]
        if not found:
            raise FileNotFoundError(f"{paths}: no spectra file matches this pattern")
    else:
        found = [str(x) for x in paths]
    frames: list[Frame] = []
    for x in found:
        p = require_file(x, "a spectra file (.h5, .npz or .npy)")
        frames.extend(_read_frames(p, elements, calibration, i0_scaler, method, fwhm_ev, key))
    return frames_to_stack(
        frames, elements, angles_deg=angles_deg, pixel_size_nm=pixel_size_nm,
        units="fitted counts" if method == "fit" else "counts",
    )


def check_spectra_lines(
    path: str | os.PathLike,
    elements: Sequence[str],
    calibration: EnergyCalibration | None = None,
    key: str = "spectra",
) -> None:
    """Raise (ValueError / DataFormatError) when an element line is unknown or outside the
    calibrated energy range of the file's spectra; reads the calibration and the shape only
    for HDF5 (the whole array for ``.npz`` / ``.npy``)."""
    for name in elements:
        emission_line(name)
    p = require_file(path, "a spectra file (.h5, .npz or .npy)")
    if p.suffix.lower() in (".npz", ".npy"):
        arrays, attrs = _load_arrays(p, key)
        n_ch = np.shape(arrays["spectra"])[-1]
    else:
        with h5py.File(p, "r") as f:
            if key not in f:
                raise DataFormatError(p, key, f"missing; datasets present: {sorted(f)}")
            attrs = {**dict(f.attrs), **dict(f[key].attrs)}
            n_ch = f[key].shape[-1]
    cal = calibration
    if cal is None:
        if _CAL_KEYS[0] not in attrs or _CAL_KEYS[1] not in attrs:
            raise DataFormatError(p, _CAL_KEYS[1], "no energy calibration in the file; give "
                                  "calibration (offset_kev, slope_kev) in the catalog entry")
        cal = EnergyCalibration(*(float(attrs.get(k, 0.0)) for k in _CAL_KEYS))
    e = cal.energies_kev(n_ch)
    outside = [n for n in elements if not e.min() <= emission_line(n).energy_kev <= e.max()]
    if outside:
        raise DataFormatError(
            p, key, f"element line(s) {outside} lie outside the calibrated range "
            f"{e.min():.3f}-{e.max():.3f} keV of the spectra; check the elements or the "
            "calibration",
        )
