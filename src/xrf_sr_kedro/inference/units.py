"""Units of enhanced maps: counts per fine pixel, so that the total is conserved.

The network works on intensive maps: the engine
(:func:`~xrf_sr_kedro.inference.engine.enhance_maps`) returns each enhanced map on the
value scale of the measured one, i.e. counts per *measured* pixel, drawn on a grid
``scale`` times finer in each axis.  Summed, such a map gives ``scale_y * scale_x``
times the measured counts.  An enhanced :class:`~xrf_sr_kedro.types.XRFStack` (and an
enhanced stack file) instead holds **counts per fine pixel**: the engine's output
divided by the number of fine pixels in one measured pixel, :func:`per_fine_pixel`,
so that over the same area::

    sum(enhanced) == sum(measured)

(exactly when the engine matches means; with a probe it matches the total through the
forward model, ``sum(step**2 * flyscan(enhanced)) == sum(measured)``, and the enhanced
total exceeds the measured one by the signal the probe's tails carry beyond the map's
edge, which is small for a sample inside the field of view)

and its ``units`` say so, e.g. ``"counts per fine pixel (7.5 x 7.5 nm)"``
(:func:`fine_pixel_units`).  The enhanced stack's metadata records the factor
(``metadata["enhancement"]["fine_pixels_per_measured_pixel"]``); consumers that need
the measured-pixel scale (the fly-scan forward model of the consistency check, the
Poisson refinement) multiply it back with :func:`per_measured_pixel`, reading the
factor with :func:`fine_pixels_per_measured_pixel`.  Stacks without that record
(a truth map, a bicubic control) are taken as they are (factor 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xrf_sr_kedro.types import XRFStack

__all__ = [
    "FINE_PIXEL_KEY",
    "fine_pixel_units",
    "fine_pixels_per_measured_pixel",
    "per_fine_pixel",
    "per_measured_pixel",
    "pixel_sizes_yx_nm",
]

#: Key of ``metadata["enhancement"]`` holding ``scale_y * scale_x``.
FINE_PIXEL_KEY = "fine_pixels_per_measured_pixel"


def per_fine_pixel(data: np.ndarray, n_fine: int | float) -> np.ndarray:
    """Counts per measured pixel on the fine grid -> counts per fine pixel.

    Parameters
    ----------
    data : ndarray (..., H * scale_y, W * scale_x)
        Enhanced maps on the measured map's value scale (the engine's output).
    n_fine : int
        Fine pixels in one measured pixel, ``scale_y * scale_x`` (16 for 4x).

    Returns
    -------
    ndarray, float32
        ``data / n_fine``: its sum over a measured pixel's area is that pixel's
        value, so the total is the measured total.
    """
    return np.asarray(data, dtype=np.float32) / np.float32(n_fine)


def per_measured_pixel(data: np.ndarray, n_fine: int | float) -> np.ndarray:
    """The inverse of :func:`per_fine_pixel`: ``data * n_fine`` (``n_fine = scale_y * scale_x``)."""
    return np.asarray(data, dtype=np.float32) * np.float32(n_fine)


def fine_pixels_per_measured_pixel(stack: XRFStack) -> int:
    """How many fine pixels make one measured pixel of ``stack``'s values.

    ``scale_y * scale_x`` for an enhanced stack in counts per fine pixel (recorded by
    :func:`xrf_sr_kedro.inference.stack.enhance_stack`), 1 for any other stack.
    """
    record: Any = stack.metadata.get("enhancement")
    if isinstance(record, dict):
        return int(record.get(FINE_PIXEL_KEY, 1))
    return 1


def pixel_sizes_yx_nm(stack: Any) -> tuple[float, float]:
    """``(y, x)`` pixel sizes in nm of an ``XRFStack`` (or a ``ChunkedStack``): the
    metadata's anisotropic ``pixel_size_y_nm`` / ``pixel_size_x_nm``, else ``pixel_size_nm``."""
    y = stack.metadata.get("pixel_size_y_nm")
    x = stack.metadata.get("pixel_size_x_nm")
    return (float(y) if y else stack.pixel_size_nm, float(x) if x else stack.pixel_size_nm)


def fine_pixel_units(units: str, pixel_size_y_nm: float, pixel_size_x_nm: float) -> str:
    """``"<units> per fine pixel (<y> x <x> nm)"``, e.g. ``"counts per fine pixel (7.5 x 7.5 nm)"``.

    Parameters
    ----------
    units : str
        The measured maps' unit (``counts``, ``fitted counts``, ...), per measured pixel.
    pixel_size_y_nm, pixel_size_x_nm : float
        The fine pixel's size in nm along y (rows) and x (columns).
    """
    return f"{units} per fine pixel ({pixel_size_y_nm:.4g} x {pixel_size_x_nm:.4g} nm)"
