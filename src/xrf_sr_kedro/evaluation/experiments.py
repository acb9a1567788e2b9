"""The 3-D rows of the evaluation table: experiments, controls and independent halves.

Every volume is put on the shared slab (:func:`~xrf_sr_kedro.evaluation.controls.slab_view`:
full-height volumes are cropped to it, the extra chains and controls already cover only
it), so all rows are scored on the same rows of the truth.

Rows (``method`` per experiment):

* ``tomography, N projections -> M reprojections`` (M = ``tomography.reprojection.n_angles``,
  270 by default; the row says the real numbers): ``raw`` (the N measured projections
  reconstructed; halves: each half of the measured projections reconstructed alone - the
  first reconstruction of each split chain), ``raw_best_iterations``,
  ``bicubic_reprojections``, ``enhanced_measured``, ``tv_deconvolution``, ``pretrained`` and
  ``fine_tuned`` (the chain with each network), ``selected`` (the tomography stage's
  enhanced volume, made with the network chosen on the validation region; halves: the
  even and the odd measured projections, each through the whole more-angles chain);
  every row's halves are read up to the measured data's Nyquist limit (twice the raw
  voxel; :func:`~xrf_sr_kedro.metrics.fsc.split_half_band_limit_nm`);
* ``tomography, N/2 projections -> N reprojections``: ``selected`` (halves: the even and
  odd halves of the N/2 projections, each through the whole chain).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from xrf_sr_kedro.evaluation.controls import slab_view
from xrf_sr_kedro.evaluation.scoring import MetricSettings
from xrf_sr_kedro.evaluation.volumes import VolumeExperiment, evaluate_volumes
from xrf_sr_kedro.metrics.fsc import split_half_band_limit_nm
from xrf_sr_kedro.types import Volume

__all__ = ["SplitHalves", "CONTROLS_270", "tomography_experiments", "evaluate_tomography_rows"]

#: The 3-D methods of the 270-reprojection experiment besides ``raw`` and ``selected`` (the
#: network the chain uses, chosen on the validation region), in table order.
CONTROLS_270 = ("raw_best_iterations", "bicubic_reprojections", "enhanced_measured", "tv_deconvolution",
                "pretrained", "fine_tuned")


@dataclass(frozen=True)
class SplitHalves:
    """Even / odd outputs of the independent split chains (each a half of the measured
    projections through the whole chain)."""

    raw: tuple[Volume, Volume]
    reprojection_270: tuple[Volume, Volume]
    limited: tuple[Volume, Volume]

    @classmethod
    def from_named(cls, volumes: dict[str, Volume]) -> SplitHalves:
        """From ``even_raw``, ``odd_raw``, ``even_more_angles``, ``odd_more_angles``, ``even_limited``,
        ``odd_limited`` (the more-angles chain reprojects to ``tomography.reprojection.n_angles``)."""
        return cls(*((volumes[f"even_{k}"], volumes[f"odd_{k}"]) for k in ("raw", "more_angles", "limited")))


def tomography_experiments(
    raw_volume: Volume, enhanced_volume: Volume, limited_volume: Volume, halves: SplitHalves,
    controls: dict[str, Volume], slab_nm: tuple[float, float] | None, height_nm: float,
) -> list[VolumeExperiment]:
    """Every 3-D row on the slab, in table order (see module doc)."""
    def on(v: Volume) -> Volume:
        return slab_view(v, slab_nm, height_nm)

    def pair(p: tuple[Volume, Volume]) -> tuple[Volume, Volume]:
        return on(p[0]), on(p[1])

    def band(p: tuple[Volume, Volume]) -> float:
        # The halves are made from the measured projections, sampled at the raw voxel size.
        return split_half_band_limit_nm(raw_volume.voxel_size_nm, p[0].voxel_size_nm)

    missing = [m for m in CONTROLS_270 if m not in controls]
    if missing:
        raise ValueError(f"3-D controls missing: {missing}")
    n_raw = raw_volume.metadata["n_projections"]
    more = f"tomography, {n_raw} projections -> {enhanced_volume.metadata['n_projections']} reprojections"
    rows = [VolumeExperiment(more, "raw", on(raw_volume), "tomography_raw", pair(halves.raw), band(halves.raw))]
    rows += [VolumeExperiment(more, m, on(controls[m])) for m in CONTROLS_270]
    rows.append(VolumeExperiment(more, "selected", on(enhanced_volume), "tomography_enhanced",
                                 pair(halves.reprojection_270), band(halves.reprojection_270)))
    rows.append(VolumeExperiment(
        f"tomography, {(n_raw + 1) // 2} projections -> {limited_volume.metadata['n_projections']} reprojections",
        "selected", on(limited_volume), "tomography_limited", pair(halves.limited), band(halves.limited),
    ))
    return rows


def evaluate_tomography_rows(
    truth: Volume, raw_volume: Volume, enhanced_volume: Volume, limited_volume: Volume, halves: SplitHalves,
    controls: dict[str, Volume], slab_nm: tuple[float, float] | None, element: str, settings: MetricSettings,
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """:func:`~xrf_sr_kedro.evaluation.volumes.evaluate_volumes` on :func:`tomography_experiments`."""
    height_nm = truth.data.shape[1] * truth.voxel_size_nm
    rows = tomography_experiments(raw_volume, enhanced_volume, limited_volume, halves, controls, slab_nm, height_nm)
    return evaluate_volumes(truth, rows, element, settings)
