"""3-D evaluation: a reconstructed volume against the truth volume.

Each volume is compared with the matching slab of the truth on the truth's grid
(trilinear upsampling), inside the pillar's support: PSNR, SSIM, the FSC against the
truth in all directions, in the axial cone and in the equatorial band (the slice
plane, capped by the Crowther limit of the angles used), and the finest calibration
pair resolved by the Rayleigh test in 3-D (on the volume's own grid).

Split halves: only halves whose noise is independent belong in
``fsc_split_half_nm``: the even and the odd *measured* projections, each run through the
whole chain of the row's experiment (raw: each half reconstructed alone).  The rows and
their halves are assembled by :mod:`xrf_sr_kedro.evaluation.experiments`.  Halves
upsampled beyond the measured pixel are read only up to the measured data's Nyquist
limit (the row's ``split_band_limit_nm``, drawn in the split-half figure): beyond it
the halves share spectral images and the network's deterministic detail.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from xrf_sr_kedro.baselines import trilinear_upsample
from xrf_sr_kedro.evaluation.scoring import (
    MetricSettings,
    first_populated_shell,
    matched_units,
    resolved_pairs,
    score_against_truth,
)
from xrf_sr_kedro.evaluation.table import make_row, results_table
from xrf_sr_kedro.metrics.directional_fsc import crowther_limit_nm
from xrf_sr_kedro.metrics.fsc import fourier_shell_correlation, resolution_nm
from xrf_sr_kedro.metrics.image import match_intensity
from xrf_sr_kedro.metrics.plots import plot_fsc, plot_side_by_side
from xrf_sr_kedro.metrics.resolution import pairs_from_features
from xrf_sr_kedro.types import Volume

logger = logging.getLogger(__name__)

__all__ = [
    "VolumeExperiment",
    "truth_slab",
    "support_mask",
    "score_volume",
    "evaluate_volumes",
    "calibration_section",
]


@dataclass(frozen=True)
class VolumeExperiment:
    """One 3-D row: a volume, what produced it and (optionally) independent halves, whose
    split-half FSC is read up to ``split_band_limit_nm`` (default: the halves' own Nyquist
    limit; :func:`~xrf_sr_kedro.metrics.fsc.split_half_band_limit_nm`)."""

    experiment: str
    method: str
    volume: Volume
    paper_key: str = ""
    halves: tuple[Volume, Volume] | None = None
    split_band_limit_nm: float | None = None


def _slab_start_nm(volume: Volume) -> float:
    slab = volume.metadata.get("slab_nm")
    return float(slab[0]) if slab else 0.0


def truth_slab(truth: Volume, volume: Volume, element: str) -> np.ndarray:
    """The truth's slices that ``volume`` covers (its ``metadata["slab_nm"]``, if any)."""
    data = truth.data[truth.elements.index(element)]
    slab = volume.metadata.get("slab_nm")
    if slab:
        start, stop = (int(round(v / truth.voxel_size_nm)) for v in slab)
        data = data[start:stop]
    return data


def support_mask(truth: Volume, shape: tuple[int, int, int]) -> np.ndarray | None:
    """The pillar (a cylinder along axis 0, 2 voxels wider than its radius) or None."""
    radius = truth.metadata.get("pillar_radius_vox")
    if radius is None:
        return None
    c = (shape[-1] - 1) / 2.0
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    disk = (yy - c) ** 2 + (xx - c) ** 2 <= (float(radius) + 2.0) ** 2
    return np.broadcast_to(disk, shape).astype(np.float64)


def score_volume(
    volume: Volume, truth: Volume, element: str, settings: MetricSettings
) -> tuple[dict[str, float], dict[str, pd.DataFrame], np.ndarray, np.ndarray]:
    """Metrics of one volume; returns ``(values, curves, estimate, truth)`` on the truth grid."""
    ref = truth_slab(truth, volume, element)
    factor = round(volume.voxel_size_nm / truth.voxel_size_nm)
    data = volume.data[volume.elements.index(element)]
    estimate = trilinear_upsample(data, factor)[: ref.shape[0]]
    ref = ref[: estimate.shape[0]]
    values, curves = score_against_truth(estimate, ref, truth.voxel_size_nm, settings, support_mask(truth, ref.shape))
    pairs = pairs_from_features(truth.metadata.get("features", []), offset_nm=(_slab_start_nm(volume), 0.0, 0.0))
    pairs = [p for p in pairs if max(p.centre_a_nm[0], p.centre_b_nm[0]) < data.shape[0] * volume.voxel_size_nm]
    values["finest_resolved_pair_nm"] = resolved_pairs(data, volume.voxel_size_nm, pairs, settings)[0]
    return values, curves, estimate, ref


def calibration_section(volume: np.ndarray, voxel_size_nm: float, pairs: list) -> np.ndarray | None:
    """A ``(z, x)`` section through the calibration band: the rod-pair row (equatorial
    pairs) left of the disc pairs, the disc-pair row (axial pairs) from there on."""
    if not pairs:
        return None
    rows = {d: [p for p in pairs if p.direction == d] for d in ("equatorial", "axial")}
    z = [c[0] for p in pairs for c in (p.centre_a_nm, p.centre_b_nm)]
    margin = 1.5 * max(p.separation_nm for p in pairs)
    z0 = max(int((min(z) - margin) / voxel_size_nm), 0)
    z1 = min(int(np.ceil((max(z) + margin) / voxel_size_nm)), volume.shape[0])
    section = None
    split = volume.shape[-1]
    for d in ("equatorial", "axial"):
        if not rows[d]:
            continue
        y = int(round(rows[d][0].centre_a_nm[1] / voxel_size_nm - 0.5))
        part = volume[z0:z1, y, :]
        if section is None:
            section = part.copy()
        else:
            split = int(min(p.centre_a_nm[2] for p in rows[d]) / voxel_size_nm) - 6
            section[:, split:] = part[:, split:]
    return section


def _crowther_nm(truth: Volume, volume: Volume) -> float:
    radius = truth.metadata.get("pillar_radius_vox")
    width = 2 * float(radius) * truth.voxel_size_nm if radius else truth.data.shape[-1] * truth.voxel_size_nm
    n = volume.metadata.get("n_projections")
    return crowther_limit_nm(width, int(n)) if n else float("nan")


def evaluate_volumes(
    truth: Volume, experiments: list[VolumeExperiment], element: str, settings: MetricSettings
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """The 3-D rows and figures: directional FSC with the Crowther limits, the central
    slice and the split-half FSC of the independent halves."""
    rows, split, full, directional, limits, shells, slices, bands = [], {}, {}, {}, {}, {}, {}, {}
    split_limits: dict[str, float] = {}
    for exp in experiments:
        values, curves, estimate, ref = score_volume(exp.volume, truth, element, settings)
        label = f"{exp.method} ({'->'.join(re.findall(r'[0-9]+', exp.experiment))})"
        if exp.halves is not None:
            even, odd = (h.data[h.elements.index(element)] for h in exp.halves)
            voxel_nm = exp.halves[0].voxel_size_nm
            split[label] = fourier_shell_correlation(even, odd, voxel_nm, settings.apodize)
            values["fsc_split_half_nm"] = resolution_nm(split[label], settings.threshold,
                                                        band_limit_nm=exp.split_band_limit_nm)
            if exp.split_band_limit_nm is not None:
                split_limits[label] = exp.split_band_limit_nm
        rows.append(make_row(exp.experiment, exp.method, "3D", exp.paper_key, **values))
        full[label] = curves["all"]
        for d in ("axial", "equatorial"):
            directional[f"{label} {d}"] = curves[d]
            shells[f"{label} {d}"] = first_populated_shell(curves[d], settings.min_shell_voxels)
        limits[f"Crowther, {exp.volume.metadata.get('n_projections', '?')} angles"] = _crowther_nm(truth, exp.volume)
        matched = match_intensity(estimate, ref)
        slices[label] = matched[ref.shape[0] // 2]
        pairs = pairs_from_features(truth.metadata.get("features", []),
                                    offset_nm=(_slab_start_nm(exp.volume), 0.0, 0.0))
        if (band := calibration_section(matched, truth.voxel_size_nm, pairs)) is not None:
            bands.setdefault("truth", calibration_section(ref, truth.voxel_size_nm, pairs))
            bands[label] = band
    slices = {"truth": ref[ref.shape[0] // 2]} | slices
    figures = {
        "tomography_fsc_vs_truth.png": plot_fsc(full, f"{element}: FSC against the truth", settings.threshold),
        "tomography_fsc_directional.png": plot_fsc(
            directional, f"{element}: directional FSC against the truth "
            f"(cone / band {settings.cone_half_angle_deg:g} deg)", settings.threshold,
            limits_nm=limits, min_shells=shells,
        ),
        "tomography_central_slices.png": plot_side_by_side(
            slices, f"{element}: central slice", pixel_sizes_nm={k: truth.voxel_size_nm for k in slices}, ncols=4,
            units=matched_units(truth.units),
        ),
    }
    if bands:
        figures["tomography_calibration_band.png"] = plot_side_by_side(
            bands, f"{element}: calibration band, (z, x) sections through the pair rows",
            pixel_sizes_nm={k: truth.voxel_size_nm for k in bands}, ncols=2, units=matched_units(truth.units),
        )
    if split:
        figures["tomography_fsc_split_half.png"] = plot_fsc(
            split, f"{element}: split-half FSC (independent halves)", settings.threshold,
            limits_nm={f"band limit ({', '.join(k for k, w in split_limits.items() if w == v)})": v
                       for v in sorted(set(split_limits.values()))},
            band_limits_nm=split_limits,
        )
    return results_table(rows), figures
