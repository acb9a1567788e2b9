"""The metrics of one estimate against the truth: one row of the results table.

Every estimate is compared on the truth's grid.  Method outputs are in counts while
the truth is a concentration, so PSNR, SSIM and the FSC use the estimate after a
least-squares gain and offset match (:func:`~xrf_sr_kedro.metrics.image.match_intensity`);
the Rayleigh test is invariant to a positive gain and offset and uses it as is.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from xrf_sr_kedro.metrics.directional_fsc import fsc_all_directions
from xrf_sr_kedro.metrics.fsc import resolution_nm
from xrf_sr_kedro.metrics.image import match_intensity, psnr, ssim
from xrf_sr_kedro.metrics.resolution import (
    RAYLEIGH_DIP,
    FeaturePair,
    finest_resolved_pair_nm,
    rayleigh_table,
)

logger = logging.getLogger(__name__)

__all__ = ["MetricSettings", "score_against_truth", "resolved_pairs", "first_populated_shell",
           "matched_units"]


def matched_units(truth_units: str) -> str:
    """Colour-bar unit of estimates shown after :func:`match_intensity`: the truth's unit.

    Estimates come in counts per measured pixel, counts per fine pixel, ... and are all
    drawn on the truth's scale, so the figures say so rather than "a.u."."""
    return f"{truth_units} (each estimate matched to the truth by gain and offset)"


@dataclass(frozen=True)
class MetricSettings:
    """How the metrics are computed (one source for their defaults).

    ``cone_half_angle_deg``: half-angle of the axial cone and half-width of the
    equatorial band of the directional FSC; ``min_shell_voxels``: directional shells
    with fewer Fourier voxels are skipped (a 30-degree cone's first shell holds one
    Friedel pair, whose one-bit threshold is 0.88); ``rayleigh_dip``: the relative dip
    that counts a pair as resolved.
    """

    threshold: Literal["one_bit", "half_bit", "0.143"] = "one_bit"
    apodize: bool = True
    cone_half_angle_deg: float = 30.0
    min_shell_voxels: int = 8
    rayleigh_dip: float = RAYLEIGH_DIP


def first_populated_shell(table: pd.DataFrame, min_voxels: int) -> int:
    """The first shell >= 1 holding at least ``min_voxels`` Fourier voxels."""
    counts = table["n_voxels"].to_numpy()
    ok = np.flatnonzero(counts[1:] >= min_voxels)
    return int(ok[0]) + 1 if ok.size else 1


def resolved_pairs(estimate: np.ndarray, pixel_size_nm: float, pairs: list[FeaturePair],
                   settings: MetricSettings) -> tuple[float, pd.DataFrame]:
    """Finest resolved pair (nm; NaN when none or no pairs) and the per-pair table."""
    if not pairs:
        return math.nan, pd.DataFrame()
    table = rayleigh_table(estimate, pixel_size_nm, pairs, settings.rayleigh_dip)
    return finest_resolved_pair_nm(table), table


def score_against_truth(
    estimate: np.ndarray,
    truth: np.ndarray,
    pixel_size_nm: float,
    settings: MetricSettings,
    mask: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """PSNR, SSIM and FSC resolutions (all, axial, equatorial) of ``estimate``.

    Parameters
    ----------
    estimate, truth : ndarray, the same shape, (H, W) or (Z, Y, X)
        On the truth's grid; axis 0 is the rotation axis.
    pixel_size_nm : float
    settings : MetricSettings
    mask : ndarray, optional
        Real-space support (e.g. the pillar) applied in the FSC.

    Returns
    -------
    values : dict
        ``psnr_db``, ``ssim`` (a volume: mean over slices), ``fsc_vs_truth_nm``,
        ``fsc_vs_truth_axial_nm``, ``fsc_vs_truth_equatorial_nm``.
    curves : dict
        ``"all"``, ``"axial"``, ``"equatorial"`` FSC tables.
    """
    matched = match_intensity(estimate, truth)
    data_range = float(truth.max() - truth.min())
    curves = fsc_all_directions(matched, truth, pixel_size_nm, settings.cone_half_angle_deg,
                                settings.apodize, mask)
    values = {
        "psnr_db": psnr(matched, truth, data_range=data_range),
        "ssim": ssim(matched, truth, data_range=data_range),
        "fsc_vs_truth_nm": resolution_nm(curves["all"], settings.threshold),
    }
    for direction in ("axial", "equatorial"):
        table = curves[direction]
        values[f"fsc_vs_truth_{direction}_nm"] = resolution_nm(
            table, settings.threshold, min_shell=first_populated_shell(table, settings.min_shell_voxels)
        )
    return values, curves
