"""Directional Fourier shell correlation and the angular-sampling (Crowther) limit.

Tomography resolves detail along the rotation axis (sampled like a projection) and in
the slice plane (limited by the number of angles) differently; an isotropic FSC mixes
the two.  :func:`directional_fsc` keeps the Fourier voxels of a cone around the axis
(``axial``) or of a band around the slice plane (``equatorial``);
:func:`fsc_all_directions` gives the isotropic and both directional curves of one pair
from one transform (what the evaluation scores every 3-D row with);
:func:`crowther_limit_nm` is the finest period a number of angles samples.  The shell
sums and thresholds are those of :mod:`xrf_sr_kedro.metrics.fsc`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from xrf_sr_kedro.metrics.fsc import _prepare_pair, _shell_table

__all__ = ["Direction", "directional_fsc", "fsc_all_directions", "crowther_limit_nm"]


Direction = Literal["axial", "equatorial"]


def _axial_cosine(shape: tuple[int, ...]) -> np.ndarray:
    """``|k_0| / |k|`` on the rfftn grid (axis 0 = rotation axis); 1 at DC."""
    freqs = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    grids = np.meshgrid(*freqs, indexing="ij", sparse=True)
    radius = np.sqrt(sum(g**2 for g in grids))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(radius > 0, np.abs(grids[0]) / np.where(radius > 0, radius, 1.0), 1.0)


def directional_fsc(
    a,
    b,
    voxel_size_nm: float,
    direction: Direction,
    cone_half_angle_deg: float = 30.0,
    apodize: bool = False,
    mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """FSC restricted to the Fourier voxels of one direction of the rotation axis.

    The rotation axis is array axis 0: the slices of a ``(Z, Y, X)`` volume and the
    detector rows of a ``(rows, cols)`` projection (see ``xrf_sr_kedro.types``).

    Parameters
    ----------
    a, b, voxel_size_nm, apodize, mask
        As for :func:`fourier_shell_correlation` (``mask`` e.g. the pillar support).
    direction : {"axial", "equatorial"}
        ``"axial"``: the cone of Fourier voxels within ``cone_half_angle_deg`` of the
        rotation axis (detail *along* the axis, which tomography samples like a
        projection); ``"equatorial"``: the band within ``cone_half_angle_deg`` of the
        plane perpendicular to it (detail in the slice plane, limited by the number of
        angles, see :func:`crowther_limit_nm`).
    cone_half_angle_deg : float
        Half-angle of the cone / half-width of the band in degrees, in (0, 90].

    Returns
    -------
    table : pandas.DataFrame
        As :func:`fourier_shell_correlation`; ``n_voxels`` and the bit thresholds
        count only the selected voxels of each shell.  ``attrs`` also holds
        ``direction`` and ``cone_half_angle_deg``.
    """
    if direction not in ("axial", "equatorial"):
        raise ValueError(f"direction must be 'axial' or 'equatorial', got {direction!r}")
    angle = float(cone_half_angle_deg)
    if not 0.0 < angle <= 90.0:
        raise ValueError(f"cone_half_angle_deg must be in (0, 90], got {cone_half_angle_deg!r}")
    a_arr, b_arr, voxel_size_nm = _prepare_pair(a, b, voxel_size_nm, apodize, mask)
    return _directional_table(a_arr, b_arr, voxel_size_nm, direction, angle)


def _directional_table(
    a_arr: np.ndarray, b_arr: np.ndarray, voxel_size_nm: float, direction: Direction, angle: float,
    spectra: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    cosine = _axial_cosine(a_arr.shape)
    if direction == "axial":
        select = cosine >= np.cos(np.deg2rad(angle)) - 1e-12
    else:
        select = cosine <= np.sin(np.deg2rad(angle)) + 1e-12
    table = _shell_table(a_arr, b_arr, voxel_size_nm, select=np.broadcast_to(select, cosine.shape),
                         spectra=spectra)
    table.attrs.update(direction=direction, cone_half_angle_deg=angle)
    return table


def fsc_all_directions(
    a,
    b,
    voxel_size_nm: float,
    cone_half_angle_deg: float = 30.0,
    apodize: bool = False,
    mask: np.ndarray | None = None,
) -> dict[str, pd.DataFrame]:
    """``{"all": FSC, "axial": ..., "equatorial": ...}`` of one pair, transformed once.

    The same tables as :func:`fourier_shell_correlation` and :func:`directional_fsc`
    (tested equal), with one mask / apodisation and one pair of FFTs instead of three:
    the evaluation scores every 3-D row this way.
    """
    angle = float(cone_half_angle_deg)
    if not 0.0 < angle <= 90.0:
        raise ValueError(f"cone_half_angle_deg must be in (0, 90], got {cone_half_angle_deg!r}")
    a_arr, b_arr, voxel_size_nm = _prepare_pair(a, b, voxel_size_nm, apodize, mask)
    spectra = (np.fft.rfftn(a_arr), np.fft.rfftn(b_arr))
    tables = {"all": _shell_table(a_arr, b_arr, voxel_size_nm, select=None, spectra=spectra)}
    for direction in ("axial", "equatorial"):
        tables[direction] = _directional_table(a_arr, b_arr, voxel_size_nm, direction, angle, spectra)
    return tables


def crowther_limit_nm(sample_width_nm: float, n_angles: int) -> float:
    """Crowther limit ``pi * D / N``: the finest period (nm) that ``N`` projections over
    180 degrees sample without angular gaps in an object of width ``D`` (nm).

    References
    ----------
    Crowther R. A., DeRosier D. J. & Klug A. (1970), Proc. R. Soc. Lond. A 317, 319-340.
    """
    width = float(sample_width_nm)
    if not np.isfinite(width) or width <= 0:
        raise ValueError(f"sample_width_nm must be positive, got {sample_width_nm!r}")
    if isinstance(n_angles, bool) or int(n_angles) != n_angles or n_angles < 1:
        raise ValueError(f"n_angles must be a positive integer, got {n_angles!r}")
    return float(np.pi * width / int(n_angles))
