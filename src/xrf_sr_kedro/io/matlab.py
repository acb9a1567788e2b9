"""MATLAB ``.mat`` files: v5 through ``scipy.io.loadmat``, v7.3 (HDF5) through h5py.

XRF maps as groups keep them in MATLAB (variable names are arguments):

* ``data_key`` (default ``maps``): ``(n_elements, H, W)`` for one angle or
  ``(n_elements, n_angles, H, W)`` for a stack, in MATLAB's own index order
  (v7.3 files store arrays transposed; they are transposed back here, so both
  versions give the same array);
* ``names_key`` (``elements``): a cell array or char matrix of line names;
* ``angles_key`` (``theta_deg``): one angle a frame, degrees (optional);
* ``i0_key`` (optional): I0 ``(H, W)`` or ``(n_angles, H, W)``;
* ``pixel_size_key`` (``pixel_size_nm``): scalar or ``[y, x]``.

:func:`read_mat_variables` is the shared low-level reader (also used for
PtychoShelves probes in :mod:`.probe`).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xrf_sr_kedro.io.frames import Frame, check_elements, frames_to_stack
from xrf_sr_kedro.io.hdf5 import DataFormatError, require_file
from xrf_sr_kedro.types import XRFStack

logger = logging.getLogger(__name__)

__all__ = ["read_mat_maps", "read_mat_variables"]


def _h5_value(f: h5py.File, obj: Any) -> Any:
    if isinstance(obj, h5py.Group):
        return {k: _h5_value(f, obj[k]) for k in obj}
    data = obj[()]
    is_cell = data.dtype == object and data.size and isinstance(data.flat[0], h5py.Reference)
    if obj.dtype == h5py.ref_dtype or is_cell:
        return [_h5_value(f, f[r]) for r in data.ravel(order="F")]  # cell array
    if obj.attrs.get("MATLAB_class", b"") in (b"char", "char"):
        return "".join(chr(c) for c in np.asarray(data).ravel(order="F"))
    if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
        data = data["real"] + 1j * data["imag"]
    return np.asarray(data).T if np.ndim(data) > 1 else data


def _v5_value(v: Any) -> Any:
    if isinstance(v, np.ndarray) and v.dtype.names:  # struct
        return {n: _v5_value(v[n].squeeze()[()] if v[n].size == 1 else v[n]) for n in v.dtype.names}
    if isinstance(v, np.ndarray) and v.dtype == object:  # cell
        return [_v5_value(x) for x in v.ravel(order="F")]
    if isinstance(v, np.ndarray) and v.dtype.kind == "U":
        return [str(x).strip() for x in v.ravel()] if v.size > 1 else str(v.squeeze())
    return v


def read_mat_variables(path: str | os.PathLike, names: Sequence[str]) -> dict[str, Any]:
    """Variables ``names`` of a ``.mat`` file (v5 or v7.3) as NumPy values in MATLAB order.

    Structs become dicts, cell arrays lists, char arrays str. A missing variable
    raises :class:`DataFormatError` listing the variables present.
    """
    p = require_file(path, "a MATLAB .mat file")
    if h5py.is_hdf5(p):
        with h5py.File(p, "r") as f:
            present = [k for k in f.keys() if not k.startswith("#")]
            missing = [n for n in names if n.split("/")[0] not in present]
            if missing:
                raise DataFormatError(
                    p, missing[0], f"missing (v7.3 file); variables present: {present}"
                )
            return {n: _h5_value(f, f[n]) for n in names}
    from scipy.io import loadmat

    try:
        raw = loadmat(p, squeeze_me=False, struct_as_record=True)
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for bad files
        raise DataFormatError(
            p, "/", f"cannot be read as a MATLAB v5 or v7.3 file ({exc})"
        ) from exc
    present = [k for k in raw if not k.startswith("__")]
    out = {}
    for n in names:
        head, _, field = n.partition("/")
        if head not in raw:
            raise DataFormatError(p, n, f"missing (v5 file); variables present: {present}")
        value = _v5_value(raw[head])
        if field:
            if not isinstance(value, dict) or field not in value:
                fields = list(value) if isinstance(value, dict) else "no fields"
                raise DataFormatError(p, n, f"missing field; struct {head} has {fields}")
            value = value[field]
        out[n] = value
    return out


def _names(value: Any, p: Path, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v.squeeze()) if isinstance(v, np.ndarray) else str(v).strip() for v in value]
    arr = np.asarray(value)
    if arr.dtype.kind in "US":
        return [str(x).strip() for x in arr.ravel()]
    raise DataFormatError(p, key, f"expected a cell array or char matrix of names, got {arr.dtype}")


def read_mat_maps(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    elements: Sequence[str],
    data_key: str = "maps",
    names_key: str = "elements",
    angles_key: str | None = "theta_deg",
    i0_key: str | None = None,
    pixel_size_key: str | None = "pixel_size_nm",
    angles_deg: Sequence[float] | None = None,
    pixel_size_nm: float | Sequence[float] | None = None,
) -> XRFStack:
    """Element maps from ``.mat`` files (a glob, one path or a list; one file per
    angle or one file for the stack; layout in the module docstring).

    Elements are checked against ``names_key`` before the maps are read; ``i0_key``
    ``None`` logs a warning that the maps are not flux-normalised.
    """
    if isinstance(paths, (str, os.PathLike)):
        found = sorted(glob.glob(str(paths))) if glob.has_magic(str(paths)) else [str(paths)]
        if not found:
            raise FileNotFoundError(f"{paths}: no .mat file matches this pattern")
    else:
        found = [str(x) for x in paths]
    if i0_key is None:
        logger.warning(
            "%s: no I0 variable named (i0_key=None), so the maps are NOT normalised by the "
            "incident flux; beam decay between angles stays in the data", found[0],
        )
    frames: list[Frame] = []
    for x in found:
        frames.extend(
            _mat_frames(x, elements, data_key, names_key, angles_key, i0_key, pixel_size_key)
        )
    return frames_to_stack(
        frames, elements, angles_deg=angles_deg, pixel_size_nm=pixel_size_nm, units="fitted counts"
    )


def _mat_frames(path, elements, data_key, names_key, angles_key, i0_key, pixel_size_key):
    p = require_file(path, "a MATLAB .mat file")
    names = _names(read_mat_variables(p, [names_key])[names_key], p, names_key)
    idx = check_elements(elements, names, p, names_key)
    wanted = [data_key]
    optional = [k for k in (angles_key, i0_key, pixel_size_key) if k]
    v = read_mat_variables(p, wanted)
    for k in optional:
        try:
            v.update(read_mat_variables(p, [k]))
        except DataFormatError:
            if k == i0_key:
                raise
    data = np.asarray(v[data_key], dtype=np.float64)
    if data.ndim == 3:
        data = data[:, None]
    if data.ndim != 4 or data.shape[0] != len(names):
        raise DataFormatError(
            p, data_key,
            f"expected ({len(names)}, H, W) or ({len(names)}, n_angles, H, W), got {data.shape}",
        )
    n = data.shape[1]
    theta = v.get(angles_key) if angles_key else None
    theta = None if theta is None else np.atleast_1d(np.asarray(theta, dtype=np.float64)).ravel()
    i0 = None
    if i0_key is not None:
        i0 = np.asarray(v[i0_key], dtype=np.float64)
        i0 = np.broadcast_to(i0 if i0.ndim == 3 else i0[None], (n,) + data.shape[2:])
        if not np.all(np.isfinite(i0)) or np.any(i0 <= 0):
            raise DataFormatError(p, i0_key, "I0 must be positive and finite at every pixel")
    px = v.get(pixel_size_key) if pixel_size_key else None
    px = None if px is None else np.atleast_1d(np.asarray(px, dtype=np.float64)).ravel()
    py_nm, px_nm = (None, None) if px is None else ((px[0], px[-1]))
    return [
        Frame(
            maps=data[idx, k],
            source=f"{p}[{k}]" if n > 1 else str(p),
            i0=None if i0 is None else i0[k],
            angle_deg=None if theta is None or theta.size != n else float(theta[k]),
            pixel_size_y_nm=py_nm,
            pixel_size_x_nm=px_nm,
            extra={"format": "MATLAB v7.3" if h5py.is_hdf5(p) else "MATLAB v5"},
        )
        for k in range(n)
    ]


def check_mat_elements(
    path: str | os.PathLike, elements: Sequence[str], names_key: str = "elements"
) -> None:
    """Raise DataFormatError listing the file's element names when one is missing.

    Reads the ``names_key`` variable only, for a check before any work.
    """
    p = require_file(path, "a MATLAB .mat file")
    names = _names(read_mat_variables(p, [names_key])[names_key], p, names_key)
    check_elements(elements, names, p, names_key)
