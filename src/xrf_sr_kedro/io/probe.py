"""Ptychography probe files in, probe intensities out.

Inputs
------
* ``.npy``: a complex array ``(h, w)`` or ``(k, h, w)`` (``k`` incoherent modes).
  The file holds no pixel size, so the caller must give ``pixel_size_nm``.
* ``.h5`` / ``.hdf5``: a complex dataset of the same shapes, found at ``key`` or,
  if not given, the first of :data:`PROBE_KEYS` present (else the only complex
  dataset in the file).  The pixel size comes from ``pixel_size_nm`` (argument),
  else an attribute ``pixel_size_nm`` on the dataset or the root.  A real,
  non-negative 2-D dataset is accepted as an intensity (one mode, amplitude
  ``sqrt(I)``).

Outputs
-------
:func:`save_probe` writes a derived :class:`ProbeIntensity` to HDF5:
``/probe/intensity`` float32 ``(h, w)`` summing to 1, root attributes
``xrf_sr_kind="ProbeIntensity"``, ``pixel_size_nm``, ``fwhm_nm`` (when known) and
``metadata_json``.  :func:`load_probe_intensity` reads it back.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np

from xrf_sr_kedro.io.atomic import atomic_path
from xrf_sr_kedro.io.hdf5 import (
    KIND_ATTR,
    METADATA_ATTR,
    DataFormatError,
    check_pixel_size,
    decode_metadata,
    encode_metadata,
    require_file,
)
from xrf_sr_kedro.types import ProbeIntensity

logger = logging.getLogger(__name__)

PROBE_KEYS = ("probe", "/probe/modes", "/probe/data", "/entry/probe", "prb", "/exchange/probe")
H5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".cxi")


def _as_modes(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DataFormatError(
            path, key, f"expected a probe (h, w) or modes (k, h, w), got shape {arr.shape}"
        )
    if not (np.iscomplexobj(arr) or np.issubdtype(arr.dtype, np.floating)):
        raise DataFormatError(
            path, key, f"expected a complex (or real) array, got dtype {arr.dtype}"
        )
    if not np.all(np.isfinite(arr)):
        raise DataFormatError(path, key, "contains NaN/inf; expected finite probe values")
    if not np.iscomplexobj(arr):
        if np.any(arr < 0):
            raise DataFormatError(
                path,
                key,
                "real probe has negative values; expected a complex field or an intensity",
            )
        logger.info("%s, key %s: real probe read as intensity (amplitude sqrt(I))", path, key)
        arr = np.sqrt(arr)
    out = arr.astype(np.complex64, copy=False)
    if not np.any(np.abs(out) > 0):
        raise DataFormatError(path, key, "probe is zero everywhere")
    return out


def _find_key(f: h5py.File, path: Path) -> str:
    for k in PROBE_KEYS:
        if k in f and isinstance(f[k], h5py.Dataset):
            return f[k].name
    found: list[str] = []
    f.visititems(
        lambda name, obj: found.append("/" + name)
        if isinstance(obj, h5py.Dataset) and np.iscomplexobj(np.empty(0, obj.dtype))
        else None
    )
    if len(found) == 1:
        return found[0]
    raise DataFormatError(
        path,
        "probe",
        f"no probe dataset found (looked for {list(PROBE_KEYS)}; complex datasets: {found}); "
        "pass key=",
    )


def read_probe(
    path: str | os.PathLike,
    pixel_size_nm: float | None = None,
    key: str | None = None,
) -> tuple[np.ndarray, float]:
    """Read probe modes and their pixel size.

    Parameters
    ----------
    path : path-like
        ``.npy`` or HDF5 file.
    pixel_size_nm : float, optional
        Required for ``.npy``; for HDF5 it overrides the ``pixel_size_nm`` attribute.
    key : str, optional
        Dataset path inside an HDF5 file.

    Returns
    -------
    modes : ndarray, complex64, shape (k, h, w)
    pixel_size_nm : float

    Raises
    ------
    FileNotFoundError, DataFormatError
        Missing file or key, wrong dimensionality, non-numeric dtype, NaN/inf,
        missing pixel size.
    """
    p = require_file(path, "a probe .npy or .h5 file")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise DataFormatError(p, "array", f"cannot be read as .npy ({exc})") from exc
        modes = _as_modes(np.asarray(arr), p, "array")
        if pixel_size_nm is None:
            raise DataFormatError(
                p,
                "pixel_size_nm",
                "missing: a .npy probe carries no pixel size; pass pixel_size_nm",
            )
        return modes, check_pixel_size(pixel_size_nm, path=p, key="pixel_size_nm")
    if suffix in H5_SUFFIXES:
        try:
            f = h5py.File(p, "r")
        except OSError as exc:
            raise DataFormatError(p, "/", f"cannot be opened as HDF5 ({exc})") from exc
        with f:
            k = key if key is not None else _find_key(f, p)
            if k not in f or not isinstance(f[k], h5py.Dataset):
                raise DataFormatError(p, k, "missing; expected a complex probe dataset (k, h, w)")
            ds = f[k]
            modes = _as_modes(ds[()], p, k)
            if pixel_size_nm is None:
                pixel_size_nm = ds.attrs.get("pixel_size_nm", f.attrs.get("pixel_size_nm"))
            return modes, check_pixel_size(pixel_size_nm, path=p, key=f"{k}/@pixel_size_nm")
    raise DataFormatError(p, "suffix", f"unknown probe file type {suffix!r}; expected .npy or .h5")


def save_probe(path: str | os.PathLike, probe: ProbeIntensity) -> None:
    """Write a :class:`ProbeIntensity` to HDF5 atomically (layout in the module docstring)."""
    if not isinstance(probe, ProbeIntensity):
        raise TypeError(f"save_probe expects a ProbeIntensity, got {type(probe).__name__}")
    fwhm = probe.metadata.get("fwhm_nm")
    if fwhm is None:
        from xrf_sr_kedro.physics.probe import probe_fwhm_nm

        fwhm = probe_fwhm_nm(probe)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs[KIND_ATTR] = "ProbeIntensity"
            f.attrs["format_version"] = 1
            f.attrs["pixel_size_nm"] = probe.pixel_size_nm
            f.attrs["fwhm_nm"] = float(fwhm)
            f.attrs[METADATA_ATTR] = encode_metadata(probe.metadata)
            d = f.create_dataset("probe/intensity", data=probe.intensity.astype(np.float32))
            d.attrs["units"] = "fraction of total intensity"
            d.attrs["pixel_size_nm"] = probe.pixel_size_nm


def is_probe_intensity_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an HDF5 file written by :func:`save_probe`."""
    p = Path(path)
    if p.suffix.lower() not in H5_SUFFIXES or not p.is_file():
        return False
    with h5py.File(p, "r") as f:
        kind = f.attrs.get(KIND_ATTR)
    return (kind.decode() if isinstance(kind, bytes) else kind) == "ProbeIntensity"


def load_probe_intensity(path: str | os.PathLike) -> ProbeIntensity:
    """Read a file written by :func:`save_probe`."""
    p = require_file(path, "a probe intensity .h5 written by save_probe")
    with h5py.File(p, "r") as f:
        if "probe/intensity" not in f:
            raise DataFormatError(p, "/probe/intensity", "missing; expected (h, w) float intensity")
        i = f["probe/intensity"][()]
        if i.ndim != 2:
            raise DataFormatError(p, "/probe/intensity", f"expected 2-D (h, w), got {i.shape}")
        if not np.all(np.isfinite(i)):
            raise DataFormatError(p, "/probe/intensity", "contains NaN/inf")
        if np.any(i < 0):
            raise DataFormatError(p, "/probe/intensity", "contains negative intensity")
        pixel = check_pixel_size(f.attrs.get("pixel_size_nm"), path=p, key="/@pixel_size_nm")
        md = decode_metadata(f.attrs.get(METADATA_ATTR), path=p)
        if "fwhm_nm" in f.attrs:
            md.setdefault("fwhm_nm", float(f.attrs["fwhm_nm"]))
    return ProbeIntensity(intensity=i, pixel_size_nm=pixel, metadata=md)
