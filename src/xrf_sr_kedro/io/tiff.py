"""TIFF element maps in, ImageJ/Fiji TIFF stacks out.

Input maps are one TIFF per element line (as exported by PyXRF or MAPS), each a
2-D map ``(H, W)`` or a 3-D stack of frames ``(n_frames, H, W)``.  TIFF files
from beamline software rarely carry a trustworthy pixel size, so the caller gives
it.  Fitted maps may hold small negative values: units are ``"fitted counts"``
and negatives are clipped to 0 with a logged warning (NaN/inf are refused).

Output stacks are ImageJ hyperstacks (``imagej=True``) of float32 slices with the
voxel size in nm as resolution (``unit='nm'``, ``spacing`` = voxel size), so Fiji
shows physical distances.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tifffile

from xrf_sr_kedro.io.atomic import atomic_path
from xrf_sr_kedro.io.chunked import ChunkedVolume, LazyElement
from xrf_sr_kedro.io.hdf5 import (
    DataFormatError,
    check_pixel_size,
    check_signal,
    decode_metadata,
    encode_metadata,
    require_file,
)
from xrf_sr_kedro.types import Volume, XRFStack

logger = logging.getLogger(__name__)

UNITS = "fitted counts"


def read_tiff_map(path: str | os.PathLike, *, units: str = UNITS) -> np.ndarray:
    """Read one TIFF as float32 ``(n_frames, H, W)`` (a 2-D map gives one frame).

    Raises
    ------
    FileNotFoundError, DataFormatError
        Missing file, unreadable TIFF, colour (RGB) image, not 2-D/3-D, NaN/inf,
        negative counts.
    """
    p = require_file(path, "a 2-D map or 3-D stack TIFF")
    try:
        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            arr, axes = series.asarray(), series.axes
    except Exception as exc:  # tifffile raises several types for a bad file
        raise DataFormatError(p, "page 0", f"cannot be read as TIFF ({exc})") from exc
    arr = np.asarray(arr)
    if axes.endswith("S"):  # interleaved samples (H, W, 3|4): an RGB(A) picture
        raise DataFormatError(
            p, "image", f"is a colour (RGB) image of shape {arr.shape} (axes {axes}); expected "
            "one grey-scale map per element: export each element map as a single-channel TIFF"
        )
    if "S" in axes:  # planar samples: tifffile's default for a (3, H, W) stack
        logger.warning("%s: stored as planar RGB; reading its %d planes as frames",
                       p, arr.shape[axes.index("S")])
    arr = np.squeeze(arr) if arr.ndim > 3 else arr
    if arr.ndim not in (2, 3):
        raise DataFormatError(
            p, "image", f"expected a 2-D map (H, W) or 3-D stack (n_frames, H, W), got {arr.shape}"
        )
    arr = check_signal(arr.astype(np.float32, copy=False), path=p, key="image", units=units)
    return arr[None] if arr.ndim == 2 else arr


def read_tiff_maps(
    paths_by_element: Mapping[str, str | os.PathLike],
    pixel_size_nm: float,
    *,
    units: str = UNITS,
    angles_deg: np.ndarray | None = None,
) -> XRFStack:
    """Read one TIFF per element line into an :class:`XRFStack`.

    Parameters
    ----------
    paths_by_element : dict of str to path
        ``{"Fe_K": "maps/Fe_K.tiff", ...}``; the dict order is the channel order.
    pixel_size_nm : float
        Scan step in nm (required: TIFF exports do not record it reliably).
    units : str
        ``"fitted counts"`` (default: negatives clipped with a warning) or
        ``"counts"`` (negatives refused).
    angles_deg : array, optional
        One angle per frame when the TIFFs are projection stacks.

    Returns
    -------
    XRFStack
        ``(n_elements, n_frames, H, W)``.
    """
    if not paths_by_element:
        raise ValueError("paths_by_element must map at least one element to a TIFF file")
    first = next(iter(paths_by_element.values()))
    pixel = check_pixel_size(pixel_size_nm, path=first, key="pixel_size_nm")
    maps = []
    for element, path in paths_by_element.items():
        arr = read_tiff_map(path, units=units)
        if maps and arr.shape != maps[0].shape:
            raise DataFormatError(
                path,
                "image",
                f"shape {arr.shape} of {element} differs from {maps[0].shape} of {first}",
            )
        maps.append(arr)
    return XRFStack(
        data=np.stack(maps),
        pixel_size_nm=pixel,
        elements=tuple(paths_by_element),
        angles_deg=angles_deg,
        units=units,
        metadata={
            "source_files": {e: str(p) for e, p in paths_by_element.items()},
            "source_format": "tiff",
        },
    )


def write_tiff_stack(
    path: str | os.PathLike,
    volume_or_array: Volume | np.ndarray,
    voxel_size_nm: float | None = None,
    *,
    element: str | None = None,
    info: dict | None = None,
) -> None:
    """Write a 3-D stack (or one element of a Volume) as an ImageJ TIFF, atomically.

    Parameters
    ----------
    path : path-like
    volume_or_array : Volume, ChunkedVolume or ndarray
        A Volume with one element (or ``element`` naming one), or an array of shape
        ``(n_slices, H, W)`` or ``(H, W)``; a lazy ``ChunkedVolume`` is written one
        slice at a time.
    voxel_size_nm : float, optional
        Voxel edge in nm; defaults to the Volume's.  Written as ImageJ resolution
        (pixels per nm) with ``unit='nm'`` and ``spacing`` in nm.
    element : str, optional
        Which channel of a multi-element Volume to write.
    info : dict, optional
        JSON-serialisable provenance stored in the ImageJ ``Info`` field (for a
        Volume: its element, units and metadata are stored by default).
    """
    if isinstance(volume_or_array, (Volume, ChunkedVolume)):
        vol = volume_or_array
        if element is None:
            if len(vol.elements) != 1:
                raise ValueError(
                    f"Volume has elements {list(vol.elements)}; pass element= to choose one "
                    "(one TIFF per element)"
                )
            element = vol.elements[0]
        if element not in vol.elements:
            raise KeyError(f"element {element!r} not in volume; available: {list(vol.elements)}")
        k = vol.elements.index(element)
        # a lazy volume file is written page by page (below), never read whole
        data = vol.element(k) if isinstance(vol, ChunkedVolume) else vol.data[k]
        if info is None:
            info = {"element": element, "units": vol.units, "metadata": vol.metadata}
        voxel_size_nm = vol.voxel_size_nm if voxel_size_nm is None else voxel_size_nm
    else:
        data = np.asarray(volume_or_array)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ValueError(
                f"volume_or_array must be a Volume or a 2-D/3-D array, got shape {data.shape}"
            )
    if voxel_size_nm is None:
        raise ValueError("voxel_size_nm is required when writing a plain array")
    voxel = check_pixel_size(voxel_size_nm, path=path, key="voxel_size_nm")
    lazy = isinstance(data, LazyElement)
    if not lazy:
        data = np.ascontiguousarray(data, dtype=np.float32)
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            (data[z] for z in range(data.shape[0])) if lazy else data,
            shape=data.shape,
            dtype=np.float32,
            imagej=True,
            resolution=(1.0 / voxel, 1.0 / voxel),
            metadata={
                "axes": "ZYX",
                "unit": "nm",
                "spacing": voxel,
                **({"Info": encode_metadata(info)} if info else {}),
            },
        )
    logger.debug("wrote ImageJ stack %s %s at %.4g nm", path, data.shape, voxel)


def read_tiff_voxel_size_nm(path: str | os.PathLike) -> float | None:
    """Voxel size in nm stored by :func:`write_tiff_stack` (``None`` if absent)."""
    p = require_file(path, "an ImageJ TIFF")
    with tifffile.TiffFile(p) as t:
        md = t.imagej_metadata or {}
        if md.get("unit") == "nm" and "spacing" in md:
            return float(md["spacing"])
        tag = t.pages[0].tags.get("XResolution")
        if md.get("unit") == "nm" and tag is not None:
            num, den = tag.value
            return float(den) / float(num)
    return None


def read_tiff_info(path: str | os.PathLike) -> dict:
    """The JSON ``Info`` written by :func:`write_tiff_stack` (empty dict if absent)."""
    p = require_file(path, "an ImageJ TIFF")
    with tifffile.TiffFile(p) as t:
        text = (t.imagej_metadata or {}).get("Info")
    if not text:
        return {}
    try:
        return decode_metadata(text, path=p)
    except DataFormatError:
        return {}


def tiff_paths_in_folder(folder: str | os.PathLike, elements: list[str]) -> dict[str, Path]:
    """Find ``<element>.tif[f]`` (or ``*_<element>.tif[f]``) in ``folder`` for each element."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: folder not found (expected TIFF maps for {elements})")
    found: dict[str, Path] = {}
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    for e in elements:
        exact = [p for p in files if p.stem == e]
        loose = [p for p in files if p.stem.endswith(f"_{e}")]
        hits = exact or loose
        if not hits:
            raise DataFormatError(
                d, f"{e}.tiff", f"no TIFF for element {e!r}; found {[p.name for p in files]}"
            )
        found[e] = hits[0]
    return found
