"""Shared steps of the beamline readers (MAPS, spectra, MATLAB): frames to a stack.

A reader turns each file (or each frame of a file) into a :class:`Frame`: the
element maps, the I0 map when the file has scalers, the angle when it records
one, and the pixel sizes. :func:`frames_to_stack` then

* checks that every frame has the same map shape,
* takes the angles from the frames or from an explicit list (one per frame)
  and sorts the frames by angle,
* normalises by I0 when a scaler was named: ``maps * mean(I0) / I0``, pixel by
  pixel, with the mean over the whole stack, so the values stay on the counts
  scale of the measurement; without a scaler it logs a warning with the reason,
* keeps anisotropic pixel sizes in ``metadata`` (``pixel_size_y_nm``,
  ``pixel_size_x_nm``); ``XRFStack.pixel_size_nm`` is the x (across the
  rotation axis) size, the one the reconstruction's voxels take.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrf_sr_kedro.io.hdf5 import DataFormatError, check_pixel_size, check_signal
from xrf_sr_kedro.types import XRFStack

logger = logging.getLogger(__name__)

__all__ = ["Frame", "check_elements", "frames_to_stack", "select_i0", "pixel_sizes_nm"]


@dataclass
class Frame:
    """One map (one angle) as read from a file.

    Attributes
    ----------
    maps : ndarray, shape (n_elements, H, W)
    source : str
        File (and key) it came from.
    i0 : ndarray, shape (H, W) or None
        Incident-flux scaler, same pixels as ``maps``.
    angle_deg : float or None
    pixel_size_y_nm, pixel_size_x_nm : float or None
    extra : dict
        Provenance copied into the stack metadata.
    """

    maps: np.ndarray
    source: str
    i0: np.ndarray | None = None
    angle_deg: float | None = None
    pixel_size_y_nm: float | None = None
    pixel_size_x_nm: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def check_elements(
    requested: Sequence[str], present: Sequence[str], path: str | os.PathLike, key: str
) -> list[int]:
    """Indices of ``requested`` in ``present``; else one error listing what the file has."""
    present = [str(p) for p in present]
    missing = [e for e in requested if e not in present]
    if missing:
        raise DataFormatError(
            path, key, f"element line(s) {missing} not found; present in the file: {present}"
        )
    if not requested:
        raise DataFormatError(path, key, f"no elements requested; present in the file: {present}")
    return [present.index(e) for e in requested]


def select_i0(
    scalers: np.ndarray | None,
    names: Sequence[str] | None,
    i0_scaler: str | None,
    path: str | os.PathLike,
    key: str,
) -> np.ndarray | None:
    """The I0 map named ``i0_scaler`` from ``scalers`` ``(n, H, W)``, or ``None`` with a warning."""
    names = [] if names is None else [str(n) for n in names]
    if i0_scaler is None:
        logger.warning(
            "%s: no I0 scaler named (i0_scaler=None), so the maps are NOT normalised by the "
            "incident flux; beam decay or injections between angles stay in the data. "
            "Scalers in the file: %s",
            path, names or "none",
        )
        return None
    if scalers is None or i0_scaler not in names:
        raise DataFormatError(
            path, key, f"I0 scaler {i0_scaler!r} not found; scalers present: {names or 'none'}"
        )
    i0 = np.asarray(scalers[names.index(i0_scaler)], dtype=np.float64)
    if not np.all(np.isfinite(i0)) or np.any(i0 <= 0):
        raise DataFormatError(
            path, f"{key}[{i0_scaler}]", "I0 must be positive and finite at every pixel "
            f"(min {float(np.nanmin(i0)):.4g}); check the ion chamber / choose another scaler",
        )
    return i0


def pixel_sizes_nm(
    pixel_size_nm: float | Sequence[float] | None,
    from_file: tuple[float | None, float | None],
    path: str | os.PathLike,
) -> tuple[float, float]:
    """``(y, x)`` pixel sizes: the argument (one value or ``(y, x)``) wins over the file's."""
    if pixel_size_nm is not None:
        vals = np.atleast_1d(np.asarray(pixel_size_nm, dtype=np.float64))
        if vals.size == 1:
            vals = np.repeat(vals, 2)
        if vals.size != 2:
            raise DataFormatError(path, "pixel_size_nm", "expected one value or (y, x) in nm")
        return (
            check_pixel_size(vals[0], path=path, key="pixel_size_nm"),
            check_pixel_size(vals[1], path=path, key="pixel_size_nm"),
        )
    y, x = from_file
    if y is None or x is None:
        raise DataFormatError(
            path, "pixel_size_nm", "the file records no pixel size (positions); pass pixel_size_nm"
        )
    return (
        check_pixel_size(y, path=path, key="y axis"),
        check_pixel_size(x, path=path, key="x axis"),
    )


def frames_to_stack(
    frames: Sequence[Frame],
    elements: Sequence[str],
    *,
    angles_deg: Sequence[float] | None = None,
    pixel_size_nm: float | Sequence[float] | None = None,
    units: str = "fitted counts",
    metadata: dict[str, Any] | None = None,
) -> XRFStack:
    """Assemble frames (one per angle) into an I0-normalised, angle-sorted :class:`XRFStack`.

    Parameters
    ----------
    frames : sequence of Frame
    elements : sequence of str
        Names of the ``maps`` channels, in order.
    angles_deg : sequence of float, optional
        One angle a frame (degrees), overriding what the files say.
    pixel_size_nm : float or (y, x), optional
        Overrides the files' pixel sizes, nm.
    units : str
        ``counts`` refuses negative values; ``fitted counts`` clips them (logged).
    metadata : dict, optional
        Extra provenance.
    """
    if not frames:
        raise ValueError("no frames to assemble (no files matched?)")
    first = frames[0]
    shape = first.maps.shape
    for fr in frames[1:]:
        if fr.maps.shape != shape:
            raise DataFormatError(
                fr.source, "maps",
                f"map shape {fr.maps.shape} differs from {shape} in {first.source}",
            )
    if angles_deg is not None:
        angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
        if angles.shape[0] != len(frames):
            raise ValueError(
                f"angles_deg has {angles.shape[0]} entries but {len(frames)} frames were read"
            )
    elif all(fr.angle_deg is not None for fr in frames):
        angles = np.array([fr.angle_deg for fr in frames], dtype=np.float64)
    elif len(frames) == 1:
        angles = None
    else:
        missing = [fr.source for fr in frames if fr.angle_deg is None][:3]
        raise DataFormatError(
            missing[0], "angle",
            f"no rotation angle recorded (also in {missing[1:]}); pass angles_deg",
        )
    have_i0 = [fr.i0 is not None for fr in frames]
    if any(have_i0) and not all(have_i0):
        first_without = frames[have_i0.index(False)].source
        raise DataFormatError(first_without, "I0", "missing in this frame only")
    order = np.argsort(angles, kind="stable") if angles is not None else np.arange(len(frames))
    data = np.stack([frames[k].maps for k in order], axis=1).astype(np.float64)
    data = check_signal(data, path=first.source, key="maps", units=units)
    md: dict[str, Any] = dict(metadata or {})
    if all(have_i0):
        i0 = np.stack([frames[k].i0 for k in order])
        mean_i0 = float(i0.mean())
        data = data * (mean_i0 / i0)[None]
        md["i0_normalised"] = True
        md["i0_mean"] = mean_i0
        md["i0_per_frame_mean"] = i0.mean(axis=(1, 2)).tolist()
    else:
        md["i0_normalised"] = False
    y_nm, x_nm = pixel_sizes_nm(
        pixel_size_nm, (first.pixel_size_y_nm, first.pixel_size_x_nm), first.source
    )
    if abs(y_nm - x_nm) > 0.01 * x_nm:
        logger.warning(
            "%s: anisotropic pixels, y %.4g nm x %.4g nm; kept in metadata, the stack's "
            "pixel_size_nm is the x size", first.source, y_nm, x_nm,
        )
    md.update(
        pixel_size_y_nm=y_nm,
        pixel_size_x_nm=x_nm,
        sources=[frames[k].source for k in order],
        **{k: v for k, v in first.extra.items() if k not in md},
    )
    return XRFStack(
        data=data.astype(np.float32),
        pixel_size_nm=x_nm,
        elements=tuple(elements),
        angles_deg=None if angles is None else angles[order],
        units=units,
        metadata=md,
    )
