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

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xrf_sr_kedro.io.atomic import atomic_path
from xrf_sr_kedro.types import PatchPairs, Volume, XRFStack

logger = logging.getLogger(__name__)

KIND_ATTR = "xrf_sr_kind"
FORMAT_VERSION = 1
METADATA_ATTR = "metadata_json"

#: Units whose values are photon counts and so must not be negative.
COUNT_UNITS = frozenset({"counts", "photons", "cts"})
#: Units of fitted (least-squares) maps: small negative values are fit noise and
#: are clipped to zero with a logged warning rather than refused.
FITTED_UNITS = frozenset({"fitted counts"})

#: Arrays smaller than this many bytes are stored contiguous and uncompressed.
_COMPRESS_MIN_BYTES = 1 << 16


class DataFormatError(ValueError):
    """A file lacks a key, or holds values of the wrong shape, type or range.

    The message always names the file, the key inside it and what was expected.
    """

    def __init__(self, path: str | os.PathLike, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.path}, key {key}: {problem}")


# ----------------------------------------------------------------------------
# shared checks (also used by the PyXRF, TIFF and probe readers)
# ----------------------------------------------------------------------------


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or raise FileNotFoundError naming ``what`` was expected."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: file not found (expected {what})")
    return p


def check_signal(
    data: np.ndarray,
    *,
    path: str | os.PathLike,
    key: str,
    units: str,
) -> np.ndarray:
    """Check a signal array for NaN/inf and negative values; return it (maybe clipped).

    Parameters
    ----------
    data : ndarray
        The values read from ``path[key]``.
    path, key : str
        Where the values came from (for the error message).
    units : str
        Negative values are an error for count units (:data:`COUNT_UNITS`), are
        clipped to 0 with a logged warning for fitted units (:data:`FITTED_UNITS`)
        and are allowed otherwise (e.g. reconstructions in ``"a.u."``).

    Raises
    ------
    DataFormatError
        If ``data`` contains NaN or inf, or negative values in count units.
    """
    data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise DataFormatError(path, key, f"expected a real numeric array, got dtype {data.dtype}")
    finite = np.isfinite(data)
    if not finite.all():
        n_bad = int(data.size - finite.sum())
        raise DataFormatError(
            path, key, f"contains {n_bad} NaN/inf value(s) of {data.size}; expected finite values"
        )
    if units in COUNT_UNITS or units in FITTED_UNITS:
        negative = data < 0
        n_neg = int(negative.sum())
        if n_neg:
            if units in COUNT_UNITS:
                raise DataFormatError(
                    path,
                    key,
                    f"contains {n_neg} negative value(s) (min {float(data.min()):.4g}); "
                    f"expected non-negative {units!r}",
                )
            logger.warning(
                "%s, key %s: clipped %d negative fitted value(s) (min %.4g) to 0",
                path,
                key,
                n_neg,
                float(data.min()),
            )
            data = np.where(negative, 0, data).astype(data.dtype, copy=False)
    return data


def check_pixel_size(value: Any, *, path: str | os.PathLike, key: str) -> float:
    """Return ``value`` as a positive finite float or raise naming file and key."""
    if value is None:
        raise DataFormatError(
            path, key, "pixel size missing; expected a positive number in nm (pass pixel_size_nm)"
        )
    try:
        v = float(np.asarray(value).reshape(-1)[0]) if np.ndim(value) else float(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise DataFormatError(path, key, f"pixel size {value!r} is not a number in nm") from exc
    if not np.isfinite(v) or v <= 0:
        raise DataFormatError(path, key, f"pixel size must be a positive finite nm value, got {v}")
    return v


def _check_ndim(data: Any, ndims: Sequence[int], *, path: Any, key: str, layout: str) -> None:
    if data.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise DataFormatError(path, key, f"expected {want} {layout}, got shape {data.shape}")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"metadata value of type {type(obj).__name__} is not JSON-serialisable")


def encode_metadata(metadata: dict[str, Any]) -> str:
    """JSON text of ``metadata``; NumPy arrays and scalars become lists and numbers."""
    return json.dumps(metadata or {}, default=_json_default, sort_keys=True)


def decode_metadata(text: Any, *, path: Any = "<memory>") -> dict[str, Any]:
    """Inverse of :func:`encode_metadata` (``None`` gives an empty dict)."""
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        out = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"/@{METADATA_ATTR}", f"is not valid JSON: {exc}") from exc
    if not isinstance(out, dict):
        raise DataFormatError(path, f"/@{METADATA_ATTR}", "expected a JSON object")
    return out


def _decode_str(x: Any) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def decode_names(values: Any) -> list[str]:
    """Strings from an HDF5 string dataset (bytes or str, stripped of NULs/space)."""
    return [_decode_str(v).strip().strip("\x00") for v in np.asarray(values).reshape(-1)]


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


def _write_stack(f: h5py.File, s: XRFStack, path: Any) -> None:
    check_signal(s.data, path=path, key="/exchange/data", units=s.units)
    _write_common_root(f, "XRFStack", s.metadata)
    f.attrs["pixel_size_nm"] = s.pixel_size_nm
    f.attrs["units"] = s.units
    ex = f.create_group("exchange")
    data = s.data[0] if len(s.elements) == 1 else s.data
    d = _create(ex, "data", data, _frame_chunks(data.shape))
    d.attrs["units"] = s.units
    d.attrs["pixel_size_nm"] = s.pixel_size_nm
    d.attrs["axes"] = "theta:y:x" if data.ndim == 3 else "element:theta:y:x"
    ex.create_dataset("elements", data=np.array(s.elements, dtype=object), dtype=_STR)
    if s.angles_deg is not None:
        t = ex.create_dataset("theta", data=np.asarray(s.angles_deg, dtype=np.float64))
        t.attrs["units"] = "deg"


def _write_volume(f: h5py.File, v: Volume, path: Any) -> None:
    check_signal(v.data, path=path, key="/volume/data", units=v.units)
    _write_common_root(f, "Volume", v.metadata)
    f.attrs["voxel_size_nm"] = v.voxel_size_nm
    f.attrs["units"] = v.units
    g = f.create_group("volume")
    d = _create(g, "data", v.data, _frame_chunks(v.data.shape))
    d.attrs["units"] = v.units
    d.attrs["voxel_size_nm"] = v.voxel_size_nm
    d.attrs["axes"] = "element:z:y:x"
    g.create_dataset("elements", data=np.array(v.elements, dtype=object), dtype=_STR)


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
    units = _decode_str(f.attrs.get("units", "counts"))
    ds = _get(f, "/exchange/data", path, "(n_frames, H, W) or (n_elements, n_frames, H, W)")
    _check_ndim(ds, (3, 4), path=path, key="/exchange/data", layout="projection data")
    data = check_signal(ds[()], path=path, key="/exchange/data", units=units)
    elements = decode_names(_get(f, "/exchange/elements", path, "element names")[()])
    if data.ndim == 3:
        data = data[None]
    if data.shape[0] != len(elements):
        raise DataFormatError(
            path,
            "/exchange/elements",
            f"{len(elements)} names {elements} for {data.shape[0]} element channel(s)",
        )
    pixel = check_pixel_size(f.attrs.get("pixel_size_nm"), path=path, key="/@pixel_size_nm")
    angles = None
    if "/exchange/theta" in f:
        angles = _read_theta(f, path, data.shape[1])
    return XRFStack(
        data=data,
        pixel_size_nm=pixel,
        elements=tuple(elements),
        angles_deg=angles,
        units=units,
        metadata=decode_metadata(f.attrs.get(METADATA_ATTR), path=path),
    )


def _read_theta(f: h5py.File, path: Any, n_frames: int) -> np.ndarray:
    t = _get(f, "/exchange/theta", path, "(n_frames,) angles in degrees")
    theta = np.asarray(t[()], dtype=np.float64).reshape(-1)
    if theta.shape[0] != n_frames:
        raise DataFormatError(
            path, "/exchange/theta", f"{theta.shape[0]} angles for {n_frames} frames"
        )
    if not np.all(np.isfinite(theta)):
        raise DataFormatError(path, "/exchange/theta", "contains NaN/inf; expected finite degrees")
    if _decode_str(t.attrs.get("units", "deg")).lower() in {"rad", "radian", "radians"}:
        theta = np.degrees(theta)
    return theta


def _read_volume(f: h5py.File, path: Any) -> Volume:
    units = _decode_str(f.attrs.get("units", "a.u."))
    ds = _get(f, "/volume/data", path, "(n_elements, n_slices, N, N)")
    _check_ndim(
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
        _check_ndim(ds, (4,), path=path, key=key, layout="patches (n, 1, h, w)")
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
    _check_ndim(ds, (3, 4), path=path, key="/exchange/data", layout="projection data")
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
    data = check_signal(ds[()], path=path, key="/exchange/data", units=units)
    if data.ndim == 3:
        data = data[None]
    if data.shape[0] != len(names):
        raise DataFormatError(
            path,
            "/exchange/data",
            f"{data.shape[0]} element channel(s) but {len(names)} element name(s) {names}",
        )
    angles = _read_theta(f, path, data.shape[1]) if "/exchange/theta" in f else None
    return XRFStack(
        data=data,
        pixel_size_nm=pixel,
        elements=tuple(names),
        angles_deg=angles,
        units=units,
        metadata={"source_file": str(path), "source_format": "data_exchange"},
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
        kind = _decode_str(kind)
        reader = _READERS.get(kind)
        if reader is None:
            raise DataFormatError(
                p, f"/@{KIND_ATTR}", f"unknown kind {kind!r}; expected one of {sorted(_READERS)}"
            )
        return reader(f, p)
