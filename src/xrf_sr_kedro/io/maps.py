"""MAPS-style HDF5 files (APS 2-ID-E / 8-BM / Bionanoprobe) in, XRFStack out.

Layout read (one file per scan = per angle):

=========================  ===================  ======================================
key                        shape                meaning
=========================  ===================  ======================================
``/MAPS/XRF_fits``         (n_channels, H, W)   fitted maps (``source="fits"``; also
                                                ``XRF_Fits``, ``XRF_fits_quant``-free)
``/MAPS/XRF_roi``          (n_channels, H, W)   region-of-interest sums (``source="roi"``)
``/MAPS/channel_names``    (n_channels,)        ``b"Zn"`` or ``b"Zn_K"`` (bare symbols read as K)
``/MAPS/scalers``          (n_scalers, H, W)    ion chambers, ring current, ...
``/MAPS/scaler_names``     (n_scalers,)         ``b"US_IC"``, ``b"SRcurrent"``, ...
``/MAPS/x_axis``           (W,)                 stage x positions, um (pixel size)
``/MAPS/y_axis``           (H,)                 stage y positions, um
``/MAPS/extra_pvs``        (2, n)               PV names / values (the angle: ``theta_pv``)
``/MAPS@theta_deg``        scalar               the angle, if written this way
=========================  ===================  ======================================

Elements are checked against ``channel_names`` before any map is read; the error
lists the channels present.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from xrf_sr_kedro.io.frames import Frame, check_elements, frames_to_stack, select_i0
from xrf_sr_kedro.io.hdf5 import DataFormatError, decode_names, require_file
from xrf_sr_kedro.types import XRFStack

logger = logging.getLogger(__name__)

__all__ = ["read_maps_frame", "read_maps_h5", "write_maps_like"]

FIT_KEYS = ("MAPS/XRF_fits", "MAPS/XRF_Fits")
ROI_KEY = "MAPS/XRF_roi"


def _channel_names(f: h5py.File, path: Path) -> list[str]:
    if "MAPS/channel_names" not in f:
        raise DataFormatError(path, "/MAPS/channel_names", "missing; expected the element names")
    names = decode_names(f["MAPS/channel_names"][()])
    # MAPS writes bare symbols for K lines ("Zn") and "Pb_L", "Au_M" for others
    return [n if "_" in n else f"{n}_K" for n in names]


def _axis_step_nm(f: h5py.File, key: str) -> float | None:
    if key not in f:
        return None
    pos = np.asarray(f[key][()], dtype=np.float64).reshape(-1)
    if pos.size < 2:
        return None
    return abs(pos[-1] - pos[0]) / (pos.size - 1) * 1000.0  # um -> nm


def _angle(f: h5py.File, theta_pv: str | None) -> float | None:
    if "theta_deg" in f["MAPS"].attrs:
        return float(f["MAPS"].attrs["theta_deg"])
    if theta_pv and "MAPS/extra_pvs" in f:
        pvs = f["MAPS/extra_pvs"][()]
        names = decode_names(pvs[0])
        if theta_pv in names:
            return float(decode_names(pvs[1])[names.index(theta_pv)])
    return None


def read_maps_frame(
    path: str | os.PathLike,
    elements: Sequence[str],
    i0_scaler: str | None = None,
    source: str = "fits",
    theta_pv: str | None = None,
) -> Frame:
    """Read one MAPS file as a :class:`Frame` (maps of ``elements``, I0, angle, pixel sizes).

    Parameters
    ----------
    path : path-like
    elements : sequence of str
        ``Zn_K``-style names; bare MAPS symbols (``Zn``) are read as ``Zn_K``.
    i0_scaler : str, optional
        Scaler to normalise by (e.g. ``US_IC``); ``None`` logs a warning.
    source : {"fits", "roi"}
        Fitted maps (``/MAPS/XRF_fits``) or ROI sums (``/MAPS/XRF_roi``).
    theta_pv : str, optional
        Name in ``/MAPS/extra_pvs`` holding the rotation angle (degrees).
    """
    p = require_file(path, "a MAPS HDF5 file")
    if source not in ("fits", "roi"):
        raise ValueError(f"source must be 'fits' or 'roi', got {source!r}")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise DataFormatError(p, "/", f"cannot be opened as HDF5 ({exc})") from exc
    with f:
        if "MAPS" not in f:
            raise DataFormatError(p, "/MAPS", f"missing; top-level groups: {list(f.keys())}")
        names = _channel_names(f, p)
        idx = check_elements(elements, names, p, "/MAPS/channel_names")
        keys = FIT_KEYS if source == "fits" else (ROI_KEY,)
        key = next((k for k in keys if k in f), None)
        if key is None:
            raise DataFormatError(
                p, "/" + keys[0], f"missing; /MAPS holds {sorted(f['MAPS'].keys())}"
            )
        ds = f[key]
        if ds.ndim != 3 or ds.shape[0] != len(names):
            raise DataFormatError(
                p, "/" + key,
                f"expected ({len(names)}, H, W) for {len(names)} channels, got {ds.shape}",
            )
        maps = np.stack([ds[i] for i in idx]).astype(np.float64)
        scalers = f["MAPS/scalers"][()] if "MAPS/scalers" in f else None
        scaler_names = (
            decode_names(f["MAPS/scaler_names"][()]) if "MAPS/scaler_names" in f else None
        )
        i0 = select_i0(scalers, scaler_names, i0_scaler, p, "/MAPS/scalers")
        if i0 is not None and i0.shape != maps.shape[1:]:
            raise DataFormatError(
                p, "/MAPS/scalers", f"I0 shape {i0.shape} != maps {maps.shape[1:]}"
            )
        return Frame(
            maps=maps,
            source=str(p),
            i0=i0,
            angle_deg=_angle(f, theta_pv),
            pixel_size_y_nm=_axis_step_nm(f, "MAPS/y_axis"),
            pixel_size_x_nm=_axis_step_nm(f, "MAPS/x_axis"),
            extra={"format": f"MAPS {source}", "i0_scaler": i0_scaler},
        )


def read_maps_h5(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    elements: Sequence[str],
    i0_scaler: str | None = None,
    source: str = "fits",
    angles_deg: Sequence[float] | None = None,
    theta_pv: str | None = None,
    pixel_size_nm: float | Sequence[float] | None = None,
) -> XRFStack:
    """Read MAPS files (a glob pattern, one path, or a list; one file per angle).

    Returns an :class:`XRFStack` ``(n_elements, n_files, H, W)`` in ``fitted counts``
    (``counts`` for ROI sums), I0-normalised when ``i0_scaler`` is given, sorted by
    angle (angles from the files, via ``theta_pv`` / ``/MAPS@theta_deg``, or
    ``angles_deg`` in file order). Elements are checked in the first file before
    any map is read.
    """
    if isinstance(paths, (str, os.PathLike)):
        found = sorted(glob.glob(str(paths))) if glob.has_magic(str(paths)) else [str(paths)]
        if not found:
            raise FileNotFoundError(f"{paths}: no MAPS file matches this pattern")
    else:
        found = [str(x) for x in paths]
    read_maps_frame(found[0], elements, i0_scaler, source, theta_pv)  # fail fast on elements/I0
    frames = [read_maps_frame(x, elements, i0_scaler, source, theta_pv) for x in found]
    return frames_to_stack(
        frames, elements, angles_deg=angles_deg, pixel_size_nm=pixel_size_nm,
        units="fitted counts" if source == "fits" else "counts",
    )


def write_maps_like(
    path: str | os.PathLike,
    maps: np.ndarray,
    channel_names: Sequence[str],
    *,
    scalers: np.ndarray | None = None,
    scaler_names: Sequence[str] = (),
    pixel_size_nm: tuple[float, float] = (100.0, 100.0),
    theta_deg: float | None = None,
    source: str = "fits",
) -> None:
    """Write a file in the MAPS layout above (for tests and examples; not atomic-critical)."""
    from xrf_sr_kedro.io.atomic import atomic_path

    maps = np.asarray(maps, dtype=np.float32)
    _, h, w = maps.shape
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        g = f.create_group("MAPS")
        g.create_dataset("XRF_fits" if source == "fits" else "XRF_roi", data=maps)
        g.create_dataset("channel_names", data=np.array([n.encode() for n in channel_names]))
        if scalers is not None:
            g.create_dataset("scalers", data=np.asarray(scalers, dtype=np.float32))
            g.create_dataset("scaler_names", data=np.array([n.encode() for n in scaler_names]))
        g.create_dataset("y_axis", data=np.arange(h) * pixel_size_nm[0] / 1000.0)
        g.create_dataset("x_axis", data=np.arange(w) * pixel_size_nm[1] / 1000.0)
        if theta_deg is not None:
            pv = [[b"2xfm:m58.VAL", b"2xfm:m99.VAL"], [str(theta_deg).encode(), b"0"]]
            g.create_dataset("extra_pvs", data=np.array(pv))


def check_maps_elements(path: str | os.PathLike, elements: Sequence[str]) -> None:
    """Raise DataFormatError listing the file's channels when an element is missing.

    Reads ``/MAPS/channel_names`` only (no maps), for a check before any work.
    """
    p = require_file(path, "a MAPS HDF5 file")
    with h5py.File(p, "r") as f:
        check_elements(elements, _channel_names(f, p), p, "/MAPS/channel_names")
