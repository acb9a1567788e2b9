"""Figures of the preparation step: trial centres, shifts per angle, sinograms before/after.

Every image has a robust colour range (0.5-99.5 percentiles) and its unit; positions
are in nm (pixel size of the stack), angles in degrees, shifts in px and nm.
"""

from __future__ import annotations

import logging

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from xrf_sr_kedro.tomo.prepare import PreparationResult

from .plots import MAP_CMAP, _new_figure, _robust_limits, _show

logger = logging.getLogger(__name__)

__all__ = ["preparation_figures"]


def _trial_centres(result: PreparationResult) -> Figure | None:
    c = result.centre
    if c is None or c.trial_images.shape[0] == 0:
        return None
    n = c.trial_images.shape[0]
    picks = np.unique(np.linspace(0, n - 1, min(n, 5)).round().astype(int))
    fig = _new_figure(2.6 * len(picks), 3.0)
    axes = fig.subplots(1, len(picks), squeeze=False)[0]
    norm = Normalize(*_robust_limits([c.trial_images[k] for k in picks]))
    for ax, k in zip(axes, picks):
        im = _show(ax, c.trial_images[k], result.stack.pixel_size_nm, norm, MAP_CMAP,
                   f"offset {c.trial_offsets_px[k]:+.2f} px\nscore {c.trial_scores[k]:.3g}")
    label = f"FBP slice ({result.stack.units} per voxel)"
    fig.colorbar(im, ax=list(axes), shrink=0.8, label=label)
    fig.suptitle(f"trial centres on {result.reference_element}: found "
                 f"{result.center_offset_px:+.2f} px ({c.method})", fontsize=10)
    return fig


def _shifts(result: PreparationResult) -> Figure | None:
    if result.alignment is None:
        return None
    sh = result.alignment.shifts_px
    angles = result.stack.angles_deg
    fig = _new_figure(6.0, 3.2)
    ax = fig.subplots()
    ax.plot(angles, sh[:, 0], "o-", ms=3, label="dy (along the rotation axis)")
    ax.plot(angles, sh[:, 1], "s-", ms=3, label="dx (across the rotation axis)")
    ax.set_xlabel("rotation angle (degrees)")
    ax.set_ylabel("shift applied (px)")
    px = result.stack.pixel_size_nm
    sec = ax.secondary_yaxis("right", functions=(lambda v: v * px, lambda v: v / px))
    sec.set_ylabel("shift applied (nm)")
    rms = float(np.sqrt((sh**2).sum(axis=1).mean()))
    ax.set_title(f"alignment on {result.reference_element}: {rms:.2f} px rms", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def _sinograms(result: PreparationResult) -> Figure | None:
    if result.alignment is None:
        return None
    before, after = result.alignment.sinogram_before, result.alignment.sinogram_after
    fig = _new_figure(8.0, 3.4)
    axes = fig.subplots(1, 2)
    norm = Normalize(*_robust_limits([before, after]))
    width_nm = before.shape[1] * result.stack.pixel_size_nm
    angles = result.stack.angles_deg
    extent = (0.0, width_nm / 1000.0, float(angles.max()), float(angles.min()))
    for ax, img, title in zip(axes, (before, after), ("before alignment", "after alignment")):
        im = ax.imshow(img, cmap=MAP_CMAP, norm=norm, extent=extent, aspect="auto",
                       interpolation="nearest")
        ax.set_title(f"{result.reference_element} sinogram, {title}", fontsize=10)
        ax.set_xlabel("detector position (µm)")
        ax.set_ylabel("rotation angle (degrees)")
    fig.colorbar(im, ax=list(axes), shrink=0.85, label=result.stack.units)
    return fig


def preparation_figures(result: PreparationResult) -> dict[str, Figure]:
    """PNG figures of a preparation: ``trial_centres.png``, ``shifts_per_angle.png``,
    ``sinogram_before_after.png`` (the ones that apply: no shifts without alignment)."""
    figures = {
        "trial_centres.png": _trial_centres(result),
        "shifts_per_angle.png": _shifts(result),
        "sinogram_before_after.png": _sinograms(result),
    }
    return {name: fig for name, fig in figures.items() if fig is not None}
