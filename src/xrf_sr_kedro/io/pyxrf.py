"""Reader for PyXRF fitted-map HDF5 files (NSLS-II HXN/SRX/XFM).

Assumed layout (PyXRF ``make_hdf`` + batch fitting output; see
``docs/data_formats.md``)::

    xrfmap/detsum/xrf_fit        float (n_lines, H, W)   fitted line intensities
    xrfmap/detsum/xrf_fit_name   bytes (n_lines,)        b"Zn_K", b"Mn_K", b"compton", ...
    xrfmap/positions/pos         float (2, H, W)         stage positions in um; [0]=x, [1]=y
    xrfmap/positions/name        bytes (2,)              b"x_pos", b"y_pos"
    xrfmap/scan_metadata         group, attributes       param_theta (millidegrees), scan_id, ...

Fitted values are least-squares amplitudes: small negative values occur where an
element is absent.  They are clipped to 0 with a logged warning (units
``"fitted counts"``); NaN/inf are refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from xrf_sr_kedro.progress import progress

from xrf_sr_kedro.io.hdf5 import (
    DataFormatError,
    check_pixel_size,
    check_signal,
    decode_names,
    require_file,
)
from xrf_sr_kedro.io.checks import jsonable
from xrf_sr_kedro.types import XRFStack

logger = logging.getLogger(__name__)

FIT_KEY = "xrfmap/detsum/xrf_fit"
FIT_NAME_KEY = "xrfmap/detsum/xrf_fit_name"
POS_KEY = "xrfmap/positions/pos"
POS_NAME_KEY = "xrfmap/positions/name"
SCAN_METADATA_KEY = "xrfmap/scan_metadata"
UNITS = "fitted counts"


def _pixel_size_from_positions(f: h5py.File, path: Path) -> float | None:
    """Mean step of the stage positions along x (columns) and y (rows), in nm."""
    if POS_KEY not in f:
        return None
    pos = np.asarray(f[POS_KEY][()], dtype=np.float64)
    if pos.ndim != 3 or pos.shape[0] < 2:
        raise DataFormatError(path, POS_KEY, f"expected (2, H, W) positions in um, got {pos.shape}")
    if POS_NAME_KEY in f:
        names = [n.lower() for n in decode_names(f[POS_NAME_KEY][()])]
        ix = next((i for i, n in enumerate(names) if n.startswith("x")), 0)
        iy = next((i for i, n in enumerate(names) if n.startswith("y")), 1)
    else:
        ix, iy = 0, 1
    x_um, y_um = pos[ix], pos[iy]
    steps = []
    if x_um.shape[1] > 1:
        steps.append(abs(x_um[0, -1] - x_um[0, 0]) / (x_um.shape[1] - 1))
    if y_um.shape[0] > 1:
        steps.append(abs(y_um[-1, 0] - y_um[0, 0]) / (y_um.shape[0] - 1))
    steps = [s for s in steps if np.isfinite(s) and s > 0]
    if not steps:
        return None
    if len(steps) == 2 and not np.isclose(steps[0], steps[1], rtol=0.05):
        logger.warning(
            "%s: x step %.4g um and y step %.4g um differ; using their mean as the pixel size",
            path,
            steps[0],
            steps[1],
        )
    return float(np.mean(steps)) * 1000.0


def _read_one(
    path: str | os.PathLike, elements: Sequence[str], pixel_size_nm: float | None
) -> tuple[np.ndarray, float, float | None, dict[str, Any]]:
    p = require_file(path, "a PyXRF HDF5 file with xrfmap/detsum/xrf_fit")
    if isinstance(elements, str):
        elements = [elements]
    if not elements:
        raise ValueError("elements must name at least one emission line, e.g. ['Zn_K']")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise DataFormatError(p, "/", f"cannot be opened as HDF5 ({exc})") from exc
    with f:
        for key, what in ((FIT_KEY, "(n_lines, H, W) fitted maps"), (FIT_NAME_KEY, "line names")):
            if key not in f:
                raise DataFormatError(p, key, f"missing; expected {what} (PyXRF layout)")
        fit = f[FIT_KEY]
        if fit.ndim != 3:
            raise DataFormatError(
                p, FIT_KEY, f"expected 3-D (n_lines, H, W), got shape {fit.shape}"
            )
        names = decode_names(f[FIT_NAME_KEY][()])
        if len(names) != fit.shape[0]:
            raise DataFormatError(
                p, FIT_NAME_KEY, f"{len(names)} names for {fit.shape[0]} fitted maps"
            )
        missing = [e for e in elements if e not in names]
        if missing:
            raise DataFormatError(
                p, FIT_NAME_KEY, f"element line(s) {missing} not found; available: {names}"
            )
        idx = [names.index(e) for e in elements]
        maps = np.stack([np.asarray(fit[i], dtype=np.float32) for i in idx])
        maps = check_signal(maps, path=p, key=FIT_KEY, units=UNITS)
        if pixel_size_nm is None:
            pixel_size_nm = _pixel_size_from_positions(f, p)
            if pixel_size_nm is None:
                raise DataFormatError(
                    p,
                    POS_KEY,
                    "pixel size missing: no usable stage positions; pass pixel_size_nm",
                )
        pixel = check_pixel_size(pixel_size_nm, path=p, key=POS_KEY)
        theta_deg = None
        scan_md: dict[str, Any] = {}
        if SCAN_METADATA_KEY in f:
            attrs = f[SCAN_METADATA_KEY].attrs
            scan_md = {k: jsonable(attrs[k]) for k in attrs}
            if "param_theta" in attrs:
                theta_deg = float(np.asarray(attrs["param_theta"]).reshape(-1)[0]) / 1000.0
                if not np.isfinite(theta_deg):
                    raise DataFormatError(
                        p, f"{SCAN_METADATA_KEY}/@param_theta", "is NaN/inf; expected millidegrees"
                    )
    return maps, pixel, theta_deg, scan_md


def read_pyxrf(
    path: str | os.PathLike,
    elements: Sequence[str],
    pixel_size_nm: float | None = None,
) -> XRFStack:
    """Read selected element lines of one PyXRF file as a one-frame :class:`XRFStack`.

    Parameters
    ----------
    path : path-like
        PyXRF HDF5 file.
    elements : list of str
        Emission lines to keep, in this order (``["Zn_K", "Mn_K"]``).
    pixel_size_nm : float, optional
        Scan step in nm.  If omitted it is the mean stage step from
        ``xrfmap/positions/pos`` (um).

    Returns
    -------
    XRFStack
        ``data`` of shape ``(len(elements), 1, H, W)``, units ``"fitted counts"``,
        ``angles_deg`` from ``param_theta / 1000`` when present.

    Raises
    ------
    FileNotFoundError, DataFormatError
        Missing file or key, unknown element (the message lists those available),
        wrong dimensionality, NaN/inf, no pixel size.
    """
    maps, pixel, theta, scan_md = _read_one(path, elements, pixel_size_nm)
    return XRFStack(
        data=maps[:, None],
        pixel_size_nm=pixel,
        elements=tuple([elements] if isinstance(elements, str) else elements),
        angles_deg=None if theta is None else np.array([theta]),
        units=UNITS,
        metadata={"source_files": [str(path)], "source_format": "pyxrf", "scan_metadata": scan_md},
    )


def read_pyxrf_series(
    paths: Sequence[str | os.PathLike],
    elements: Sequence[str],
    pixel_size_nm: float | None = None,
) -> XRFStack:
    """Read a tomography series, one PyXRF file a projection, sorted by angle.

    Parameters
    ----------
    paths : list of path-like
        One file per rotation angle, in any order.
    elements : list of str
    pixel_size_nm : float, optional
        As in :func:`read_pyxrf`; if omitted, taken from the first file's positions.

    Returns
    -------
    XRFStack
        ``(len(elements), n_files, H, W)`` with ``angles_deg`` ascending.

    Raises
    ------
    DataFormatError
        If a file has no ``param_theta``, or the map shapes differ.
    """
    paths = list(paths)
    if not paths:
        raise ValueError("paths must list at least one PyXRF file")
    frames, angles = [], []
    pixel = pixel_size_nm
    shape = None
    for p in progress(paths, "PyXRF files", unit="file"):
        maps, px, theta, _ = _read_one(p, elements, pixel)
        pixel = px
        if theta is None:
            raise DataFormatError(
                p, f"{SCAN_METADATA_KEY}/@param_theta", "missing; a series needs each file's angle"
            )
        if shape is None:
            shape = maps.shape
        elif maps.shape != shape:
            raise DataFormatError(
                p, FIT_KEY, f"map shape {maps.shape[1:]} differs from {shape[1:]} of {paths[0]}"
            )
        frames.append(maps)
        angles.append(theta)
    order = np.argsort(angles, kind="stable")
    data = np.stack([frames[i] for i in order], axis=1)
    return XRFStack(
        data=data,
        pixel_size_nm=float(pixel),
        elements=tuple([elements] if isinstance(elements, str) else elements),
        angles_deg=np.asarray(angles, dtype=np.float64)[order],
        units=UNITS,
        metadata={"source_files": [str(paths[i]) for i in order], "source_format": "pyxrf"},
    )


def write_pyxrf_like(
    path: str | os.PathLike,
    maps: dict[str, np.ndarray],
    *,
    step_um: float | tuple[float, float] = 0.1,
    theta_mdeg: float | None = None,
    extra_lines: Sequence[str] = ("compton", "elastic"),
) -> None:
    """Write a file in the PyXRF layout above (for tests and examples, not beamline use).

    Parameters
    ----------
    maps : dict of str to (H, W) arrays
        Fitted maps by line name.
    step_um : float or (x, y)
        Stage step written into ``xrfmap/positions/pos``.
    theta_mdeg : float, optional
        Rotation angle written as ``xrfmap/scan_metadata@param_theta``.
    extra_lines : list of str
        Non-element fit channels PyXRF also stores (filled with ones).
    """
    names = list(maps) + list(extra_lines)
    first = np.asarray(next(iter(maps.values())))
    h, w = first.shape
    fit = np.stack([np.asarray(m, dtype=np.float32) for m in maps.values()] +
                   [np.ones((h, w), np.float32) for _ in extra_lines])
    sx, sy = (step_um, step_um) if np.isscalar(step_um) else step_um
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    with h5py.File(path, "w") as f:
        det = f.create_group("xrfmap/detsum")
        det.create_dataset("xrf_fit", data=fit)
        det.create_dataset("xrf_fit_name", data=np.array([n.encode() for n in names]))
        pos = f.create_group("xrfmap/positions")
        pos.create_dataset("pos", data=np.stack([10.0 + xx * sx, -5.0 + yy * sy]))
        pos.create_dataset("name", data=np.array([b"x_pos", b"y_pos"]))
        md = f.create_group("xrfmap/scan_metadata")
        md.attrs["scan_id"] = 12345
        md.attrs["scan_instrument_id"] = "HXN"
        if theta_mdeg is not None:
            md.attrs["param_theta"] = float(theta_mdeg)
