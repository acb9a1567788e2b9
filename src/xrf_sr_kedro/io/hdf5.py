"""HDF5 files for :class:`XRFStack`, :class:`Volume` and :class:`PatchPairs`.

One file holds one object.  The root attribute ``xrf_sr_kind`` names the kind
(``"XRFStack"``, ``"Volume"`` or ``"PatchPairs"``) and ``format_version`` the
layout version; ``metadata_json`` holds the object's metadata dict as JSON.

Projection stacks follow the APS Data Exchange convention so that TomoPy and
dxchange open them directly:

* ``/exchange/data``  float32, ``(n_frames, H, W)`` for one element,
  ``(n_elements, n_frames, H, W)`` otherwise; attributes ``units``,
  ``pixel_size_nm``, ``axes``.
* ``/exchange/theta`` float64 ``(n_frames,)`` in degrees (only when angles exist).
* ``/exchange/elements`` UTF-8 strings ``(n_elements,)``.

Volumes live in ``/volume/data`` ``(n_elements, n_slices, N, N)`` and patch pairs
in ``/lr`` and ``/hr``.  See ``docs/data_formats.md`` for every key.

A plain Data Exchange projection file written by another program (no
``xrf_sr_kind`` attribute, 3-D ``/exchange/data`` and ``/exchange/theta``) is read
as an :class:`XRFStack` when the caller supplies the pixel size and element name.

Every error raised for a bad file is a :class:`DataFormatError` (a ``ValueError``)
or ``FileNotFoundError`` whose message names the file, the key and what was
expected.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from xrf_sr_kedro.io.atomic import atomic_path
from xrf_sr_kedro.io.checks import (  # noqa: F401  (re-exported for the TIFF, PyXRF and probe readers)
    COUNT_UNITS,
    FITTED_UNITS,
    METADATA_ATTR,
    DataFormatError,
    check_ndim,
    check_pixel_size,
    check_signal,
    decode_metadata,
    decode_names,
    decode_str,
    encode_metadata,
    require_file,
)
from xrf_sr_kedro.types import PatchPairs, Volume, XRFStack

logger = logging.getLogger(__name__)

KIND_ATTR = "xrf_sr_kind"
FORMAT_VERSION = 1

#: Arrays smaller than this many bytes are stored contiguous and uncompressed.
_COMPRESS_MIN_BYTES = 1 << 16


def _create(group: h5py.Group, name: str, data: np.ndarray, chunks: tuple | None) -> h5py.Dataset:
    data = np.ascontiguousarray(data)
    if data.nbytes >= _COMPRESS_MIN_BYTES and chunks is not None:
        return group.create_dataset(
            name, data=data, chunks=chunks, compression="gzip", compression_opts=1, shuffle=True
        )
    return group.create_dataset(name, data=data)


def _frame_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One chunk per 2-D frame (fast frame access, good gzip blocks)."""
    return (1,) * (len(shape) - 2) + tuple(shape[-2:])


_STR = h5py.string_dtype("utf-8")


def _write_common_root(f: h5py.File, kind: str, metadata: dict[str, Any]) -> None:
    f.attrs[KIND_ATTR] = kind
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs[METADATA_ATTR] = encode_metadata(metadata)
    f.attrs["creator"] = "xrf_sr_kedro"


# ----------------------------------------------------------------------------
# writers
# ----------------------------------------------------------------------------


def _write_elemental(
    f: h5py.File, group: str, data: np.ndarray, elements: Sequence[str], *,
    units: str, size_attr: str, size_nm: float, axes: str,
) -> h5py.Group:
    """``/<group>/data`` (frame-chunked) and ``/<group>/elements``, sizes and units on root and data."""
    f.attrs[size_attr] = size_nm
    f.attrs["units"] = units
    g = f.create_group(group)
    d = _create(g, "data", data, _frame_chunks(data.shape))
    d.attrs["units"] = units
    d.attrs[size_attr] = size_nm
    d.attrs["axes"] = axes
    g.create_dataset("elements", data=np.array(elements, dtype=object), dtype=_STR)
    return g


def _write_stack(f: h5py.File, s: XRFStack, path: Any) -> None:
    check_signal(s.data, path=path, key="/exchange/data", units=s.units)
    _write_common_root(f, "XRFStack", s.metadata)
    data = s.data[0] if len(s.elements) == 1 else s.data
    ex = _write_elemental(
        f, "exchange", data, s.elements, units=s.units, size_attr="pixel_size_nm",
        size_nm=s.pixel_size_nm, axes="theta:y:x" if data.ndim == 3 else "element:theta:y:x",
    )
    if s.angles_deg is not None:
        t = ex.create_dataset("theta", data=np.asarray(s.angles_deg, dtype=np.float64))
        t.attrs["units"] = "deg"


def _write_volume(f: h5py.File, v: Volume, path: Any) -> None:
    check_signal(v.data, path=path, key="/volume/data", units=v.units)
    _write_common_root(f, "Volume", v.metadata)
    _write_elemental(
        f, "volume", v.data, v.elements, units=v.units, size_attr="voxel_size_nm",
        size_nm=v.voxel_size_nm, axes="element:z:y:x",
    )


def _write_pairs(f: h5py.File, p: PatchPairs, path: Any) -> None:
    check_signal(p.lr, path=path, key="/lr", units="normalised")
    check_signal(p.hr, path=path, key="/hr", units="normalised")
    _write_common_root(f, "PatchPairs", p.metadata)
    f.attrs["lr_pixel_size_nm"] = p.lr_pixel_size_nm
    f.attrs["hr_pixel_size_nm"] = p.hr_pixel_size_nm
    for name, arr in (("lr", p.lr), ("hr", p.hr)):
        chunks = (max(1, min(len(p), (1 << 20) // max(1, arr[0].nbytes))),) + arr.shape[1:]
        d = _create(f, name, arr, chunks)
        d.attrs["axes"] = "patch:channel:y:x"
        d.attrs["units"] = "normalised [0, 1]"


def save_h5(path: str | os.PathLike, obj: XRFStack | Volume | PatchPairs) -> None:
    """Write ``obj`` to the HDF5 file ``path`` atomically.

    The file is written beside ``path`` under a temporary name and renamed over it
    when complete, so a crash never leaves a half-written file and an existing file
    survives a failed save.

    Parameters
    ----------
    path : path-like
        Target file (parent folders are created).
    obj : XRFStack, Volume or PatchPairs

    Raises
    ------
    TypeError
        If ``obj`` is not one of the three kinds.
    DataFormatError
        If the values contain NaN/inf, or negative values in count units.
    """
    writers = {XRFStack: _write_stack, Volume: _write_volume, PatchPairs: _write_pairs}
    writer = writers.get(type(obj))
    if writer is None:
        raise TypeError(
            f"save_h5 expects an XRFStack, Volume or PatchPairs, got {type(obj).__name__}"
        )
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            writer(f, obj, path)
    logger.debug("wrote %s to %s", type(obj).__name__, path)


# ----------------------------------------------------------------------------
# readers
# ----------------------------------------------------------------------------


def _get(f: h5py.File, key: str, path: Any, expected: str) -> h5py.Dataset:
    if key not in f:
        raise DataFormatError(path, key, f"missing; expected {expected}")
    obj = f[key]
    if not isinstance(obj, h5py.Dataset):
        raise DataFormatError(path, key, f"is a group; expected {expected}")
    return obj


def _attr(f: h5py.File, name: str, path: Any) -> Any:
    if name not in f.attrs:
        raise DataFormatError(path, f"/@{name}", "root attribute missing")
    return f.attrs[name]


def _read_stack(f: h5py.File, path: Any) -> XRFStack:
    units = decode_str(f.attrs.get("units", "counts"))
    ds = _get(f, "/exchange/data", path, "(n_frames, H, W) or (n_elements, n_frames, H, W)")
    check_ndim(ds, (3, 4), path=path, key="/exchange/data", layout="projection data")
    elements = decode_names(_get(f, "/exchange/elements", path, "element names")[()])
    pixel = check_pixel_size(f.attrs.get("pixel_size_nm"), path=path, key="/@pixel_size_nm")
    return _exchange_stack(
        f, ds, path, elements, "/exchange/elements", pixel, units,
        decode_metadata(f.attrs.get(METADATA_ATTR), path=path),
    )


def _exchange_stack(
    f: h5py.File, ds: h5py.Dataset, path: Any, elements: list[str], names_key: str,
    pixel_size_nm: float, units: str, metadata: dict[str, Any],
) -> XRFStack:
    """The XRFStack of a Data Exchange file: checked signal, one channel per element, angles."""
    data = check_signal(ds[()], path=path, key="/exchange/data", units=units)
    if data.ndim == 3:
        data = data[None]
    if data.shape[0] != len(elements):
        raise DataFormatError(
            path,
            names_key,
            f"{len(elements)} element name(s) {elements} for {data.shape[0]} element channel(s)",
        )
    angles = read_theta_deg(f, path, data.shape[1]) if "/exchange/theta" in f else None
    return XRFStack(
        data=data,
        pixel_size_nm=pixel_size_nm,
        elements=tuple(elements),
        angles_deg=angles,
        units=units,
        metadata=metadata,
    )


def read_theta_deg(f: h5py.File, path: Any, n_frames: int) -> np.ndarray:
    """``/exchange/theta`` in degrees: the one reader of Data Exchange angles.

    Degrees unless the dataset's ``units`` attribute says radians (``rad``,
    ``radian``, ``radians``); DataFormatError naming the file unless there are
    ``n_frames`` finite angles.
    """
    t = _get(f, "/exchange/theta", path, "(n_frames,) angles in degrees")
    theta = np.asarray(t[()], dtype=np.float64).reshape(-1)
    if theta.shape[0] != n_frames:
        raise DataFormatError(
            path, "/exchange/theta", f"{theta.shape[0]} angles for {n_frames} frames"
        )
    if not np.all(np.isfinite(theta)):
        raise DataFormatError(path, "/exchange/theta", "contains NaN/inf; expected finite degrees")
    if decode_str(t.attrs.get("units", "deg")).lower() in {"rad", "radian", "radians"}:
        theta = np.degrees(theta)
    return theta


def _read_volume(f: h5py.File, path: Any) -> Volume:
    units = decode_str(f.attrs.get("units", "a.u."))
    ds = _get(f, "/volume/data", path, "(n_elements, n_slices, N, N)")
    check_ndim(
        ds, (4,), path=path, key="/volume/data", layout="volume (n_elements, n_slices, N, N)"
    )
    data = check_signal(ds[()], path=path, key="/volume/data", units=units)
    elements = decode_names(_get(f, "/volume/elements", path, "element names")[()])
    if data.shape[0] != len(elements):
        raise DataFormatError(
            path, "/volume/elements", f"{len(elements)} names for {data.shape[0]} channel(s)"
        )
    voxel = check_pixel_size(f.attrs.get("voxel_size_nm"), path=path, key="/@voxel_size_nm")
    return Volume(
        data=data,
        voxel_size_nm=voxel,
        elements=tuple(elements),
        units=units,
        metadata=decode_metadata(f.attrs.get(METADATA_ATTR), path=path),
    )


def _read_pairs(f: h5py.File, path: Any) -> PatchPairs:
    arrays = {}
    for key in ("/lr", "/hr"):
        ds = _get(f, key, path, "(n, 1, h, w) patches in [0, 1]")
        check_ndim(ds, (4,), path=path, key=key, layout="patches (n, 1, h, w)")
        arrays[key] = check_signal(ds[()], path=path, key=key, units="normalised")
    return PatchPairs(
        lr=arrays["/lr"],
        hr=arrays["/hr"],
        lr_pixel_size_nm=check_pixel_size(
            f.attrs.get("lr_pixel_size_nm"), path=path, key="/@lr_pixel_size_nm"
        ),
        hr_pixel_size_nm=check_pixel_size(
            f.attrs.get("hr_pixel_size_nm"), path=path, key="/@hr_pixel_size_nm"
        ),
        metadata=decode_metadata(f.attrs.get(METADATA_ATTR), path=path),
    )


def _read_foreign_exchange(
    f: h5py.File,
    path: Any,
    elements: Sequence[str] | str | None,
    pixel_size_nm: float | None,
    units: str,
) -> XRFStack:
    ds = _get(f, "/exchange/data", path, "(n_frames, H, W) projections")
    check_ndim(ds, (3, 4), path=path, key="/exchange/data", layout="projection data")
    if "/exchange/elements" in f and elements is None:
        names = decode_names(f["/exchange/elements"][()])
    elif elements is None:
        raise DataFormatError(
            path,
            "/exchange/elements",
            "missing and no element name given; pass elements=['Fe_K'] (load_args: elements)",
        )
    else:
        names = [elements] if isinstance(elements, str) else [str(e) for e in elements]
    if pixel_size_nm is None:
        pixel_size_nm = f.attrs.get("pixel_size_nm", ds.attrs.get("pixel_size_nm"))
    pixel = check_pixel_size(pixel_size_nm, path=path, key="/@pixel_size_nm")
    return _exchange_stack(
        f, ds, path, names, "/exchange/data", pixel, units,
        {"source_file": str(path), "source_format": "data_exchange"},
    )


_READERS = {"XRFStack": _read_stack, "Volume": _read_volume, "PatchPairs": _read_pairs}


def load_h5(
    path: str | os.PathLike,
    *,
    elements: Sequence[str] | str | None = None,
    pixel_size_nm: float | None = None,
    units: str = "counts",
) -> XRFStack | Volume | PatchPairs:
    """Read a file written by :func:`save_h5`, or a plain Data Exchange projection file.

    Parameters
    ----------
    path : path-like
    elements : str or list of str, optional
        Element name(s) of a foreign Data Exchange file without ``/exchange/elements``
        (ignored for files written by :func:`save_h5`).
    pixel_size_nm : float, optional
        Pixel size of a foreign Data Exchange file in nm (required there unless the
        file has a ``pixel_size_nm`` attribute; ignored for our own files).
    units : str
        Units of a foreign file's data (default ``"counts"``: negatives are refused).

    Returns
    -------
    XRFStack, Volume or PatchPairs
        The kind named by the root attribute ``xrf_sr_kind``; an XRFStack for a
        foreign Data Exchange file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataFormatError
        Missing key, wrong dimensionality, NaN/inf, negative counts, missing pixel
        size; the message names the file and the key.
    """
    p = require_file(path, "an HDF5 file written by xrf_sr_kedro or a Data Exchange file")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise DataFormatError(p, "/", f"cannot be opened as HDF5 ({exc})") from exc
    with f:
        kind = f.attrs.get(KIND_ATTR)
        if kind is None:
            if "/exchange/data" in f:
                return _read_foreign_exchange(f, p, elements, pixel_size_nm, units)
            raise DataFormatError(
                p,
                f"/@{KIND_ATTR}",
                "root attribute missing and no /exchange/data; expected a file written by "
                "save_h5 or a Data Exchange projection file",
            )
        kind = decode_str(kind)
        reader = _READERS.get(kind)
        if reader is None:
            raise DataFormatError(
                p, f"/@{KIND_ATTR}", f"unknown kind {kind!r}; expected one of {sorted(_READERS)}"
            )
        return reader(f, p)
