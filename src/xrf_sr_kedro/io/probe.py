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

* ``.npz`` (as ptychography scripts save them): ``probe_real`` + ``probe_imag``,
  else ``probe`` (complex, or real = intensity), else the only complex array;
  modes ``(k, h, w)``; pixel size from a scalar array ``pixel_size_nm`` (or
  ``pixel_size_m``), else the argument.
* PtychoShelves ``.mat`` (v5 or v7.3): variable ``probe`` ``(h, w)``,
  ``(h, w, k)`` or ``(h, w, k, n_probes)`` (MATLAB order; the first probe's
  modes are used); pixel size ``p.dx_spec`` in metres (``[dy, dx]``: the mean,
  with a warning when they differ).
* PtyPy ``.ptyr`` (HDF5): ``content/probe/<storage>/data`` ``(k, h, w)`` and
  ``content/probe/<storage>/_psize`` in metres (the first storage, sorted by name).

Several modes give the summed intensity ``sum_k |P_k|^2`` downstream.

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
from typing import Any

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
        ``.npy``, ``.npz``, HDF5, PtychoShelves ``.mat`` or PtyPy ``.ptyr`` file.
    pixel_size_nm : float, optional
        Required for ``.npy``; for the others it overrides the file's pixel size.
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
    p = require_file(path, "a probe .npy, .npz, .h5, .mat or .ptyr file")
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
    if suffix == ".npz":
        return _read_npz(p, pixel_size_nm)
    if suffix == ".mat":
        return _read_ptychoshelves(p, pixel_size_nm)
    if suffix == ".ptyr":
        return _read_ptyr(p, pixel_size_nm)
    raise DataFormatError(
        p, "suffix", f"unknown probe file type {suffix!r}; expected .npy, .npz, .h5, .mat or .ptyr"
    )


def _metres_to_nm(value: Any, p: Path, key: str) -> float:
    v = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    if v.size == 0:
        raise DataFormatError(p, key, "empty pixel size")
    if v.size > 1 and abs(v.max() - v.min()) > 0.01 * abs(v.mean()):
        logger.warning("%s, key %s: anisotropic probe pixels %s m; using their mean", p, key, v)
    return check_pixel_size(float(v.mean()) * 1e9, path=p, key=key)


def _read_npz(p: Path, pixel_size_nm: float | None) -> tuple[np.ndarray, float]:
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        raise DataFormatError(p, "archive", f"cannot be read as .npz ({exc})") from exc
    if "probe_real" in arrays or "probe_imag" in arrays:
        if not {"probe_real", "probe_imag"} <= set(arrays):
            raise DataFormatError(
                p, "probe_imag",
                f"probe_real and probe_imag come together; arrays present: {sorted(arrays)}",
            )
        key, arr = "probe_real/probe_imag", arrays["probe_real"] + 1j * arrays["probe_imag"]
    elif "probe" in arrays:
        key, arr = "probe", arrays["probe"]
    else:
        cplx = [k for k, a in arrays.items() if np.iscomplexobj(a)]
        if len(cplx) != 1:
            raise DataFormatError(
                p, "probe", f"no probe array (looked for probe_real/probe_imag, probe, or one "
                f"complex array); arrays present: {sorted(arrays)}",
            )
        key, arr = cplx[0], arrays[cplx[0]]
    modes = _as_modes(np.asarray(arr), p, key)
    if pixel_size_nm is None:
        if "pixel_size_nm" in arrays:
            pixel_size_nm = float(arrays["pixel_size_nm"])
        elif "pixel_size_m" in arrays:
            return modes, _metres_to_nm(arrays["pixel_size_m"], p, "pixel_size_m")
        else:
            raise DataFormatError(
                p, "pixel_size_nm", f"missing: no pixel_size_nm / pixel_size_m array "
                f"(arrays: {sorted(arrays)}); pass pixel_size_nm",
            )
    return modes, check_pixel_size(pixel_size_nm, path=p, key="pixel_size_nm")


def _read_ptychoshelves(p: Path, pixel_size_nm: float | None) -> tuple[np.ndarray, float]:
    from xrf_sr_kedro.io.matlab import read_mat_variables

    arr = np.asarray(read_mat_variables(p, ["probe"])["probe"])
    if arr.ndim == 4:
        arr = arr[..., 0]
    if arr.ndim == 3:
        arr = np.moveaxis(arr, -1, 0)  # MATLAB (h, w, k) -> (k, h, w)
    modes = _as_modes(arr, p, "probe")
    if pixel_size_nm is not None:
        return modes, check_pixel_size(pixel_size_nm, path=p, key="pixel_size_nm")
    dx = read_mat_variables(p, ["p/dx_spec"])["p/dx_spec"]
    return modes, _metres_to_nm(dx, p, "p.dx_spec")


def _read_ptyr(p: Path, pixel_size_nm: float | None) -> tuple[np.ndarray, float]:
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise DataFormatError(p, "/", f"cannot be opened as HDF5 (.ptyr) ({exc})") from exc
    with f:
        if "content/probe" not in f or not len(f["content/probe"]):
            raise DataFormatError(p, "/content/probe", f"missing; top-level keys: {list(f.keys())}")
        storage = sorted(f["content/probe"].keys())[0]
        g = f["content/probe"][storage]
        if "data" not in g:
            raise DataFormatError(
                p, g.name + "/data", f"missing; the storage holds {list(g.keys())}"
            )
        modes = _as_modes(g["data"][()], p, g.name + "/data")
        if pixel_size_nm is not None:
            return modes, check_pixel_size(pixel_size_nm, path=p, key="pixel_size_nm")
        if "_psize" not in g:
            raise DataFormatError(p, g.name + "/_psize", "missing; pass pixel_size_nm")
        return modes, _metres_to_nm(g["_psize"][()], p, g.name + "/_psize")


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
