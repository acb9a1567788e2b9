"""Choosing the TV weight on data disjoint from the evaluation truth.

Two tuning sources (``TVTuning.region``):

* ``"simulated_region"`` (default for simulated data): a second sample drawn from the
  same simulator as the evaluated one (:func:`~xrf_sr_kedro.physics.phantom.battery_phantom`
  with another seed), at the evaluation's voxel size and scan step, projected at a few
  angles and fly-scanned with the raw scan's recorded noise model (``raw_xrf.metadata``:
  mean counts, background, readout noise).  Same geometry, never the evaluated sample.
* ``"fine_tuning_region"``: the fine-tuning region's coarse (200 nm) scans deconvolved
  onto its fine (50 nm) grid and compared with its fine scans: real-data-like (no truth
  needed) but on a different grid and against a blurred, noisy reference.  On the
  default run this prefers weights about 10x below the best for the 7.5 nm evaluation
  (docs/evaluation.md), so it is the fallback for data without a simulator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from xrf_sr_kedro.baselines import tune_tv_weight
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.noise import simulate_counts
from xrf_sr_kedro.physics.phantom import battery_phantom
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.tomo.reproject import reproject
from xrf_sr_kedro.types import ProbeIntensity, Volume, XRFStack

logger = logging.getLogger(__name__)

__all__ = ["TVTuning", "tune_tv_on_region", "tune_tv_on_simulated_region", "tune_tv_for_evaluation"]


@dataclass(frozen=True)
class TVTuning:
    """The TV weight sweep (dimensionless weights) and where it runs."""

    region: Literal["simulated_region", "fine_tuning_region"] = "simulated_region"
    weights: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
    n_frames: int = 3
    n_iter: int = 200
    seed_offset: int = 1000  # simulated region: seed of the evaluated sample + this


def tune_tv_on_region(
    coarse: XRFStack, fine: XRFStack, probe_intensity: ProbeIntensity, element: str,
    weights: list[float], n_frames: int = 3, n_iter: int = 200, fast_axis: Literal["x", "y"] = "x",
) -> tuple[float, pd.DataFrame]:
    """Tune on a coarse/fine scan pair of one region (e.g. the fine-tuning region's 200 nm
    and 50 nm scans), the probe resampled to the fine pixel size."""
    step = coarse.pixel_size_nm / fine.pixel_size_nm
    if abs(step - round(step)) > 1e-6 or round(step) < 1:
        raise ValueError(
            f"fine_tuning coarse pixel {coarse.pixel_size_nm} nm is not an integer multiple of "
            f"the fine pixel {fine.pixel_size_nm} nm; the TV weight cannot be tuned on them"
        )
    step = int(round(step))
    frames = np.unique(np.linspace(0, coarse.n_frames - 1, n_frames).astype(int))
    lr = coarse.select_elements([element]).data[0, frames]
    ref = fine.select_elements([element]).data[0, frames]
    h, w = min(lr.shape[-2], ref.shape[-2] // step), min(lr.shape[-1], ref.shape[-1] // step)
    probe = resample_probe(probe_intensity, fine.pixel_size_nm)
    return tune_tv_weight(lr[:, :h, :w], ref[:, : h * step, : w * step], probe.intensity, step,
                          weights, n_iter=n_iter, fast_axis=fast_axis)


def tune_tv_on_simulated_region(
    truth: Volume, raw_xrf: XRFStack, probe_intensity: ProbeIntensity, element: str, tuning: TVTuning,
) -> tuple[float, pd.DataFrame]:
    """Tune on another simulated sample at the evaluation's geometry (see module doc)."""
    meta = raw_xrf.metadata
    missing = [k for k in ("step_px", "mean_counts", "background_counts", "readout_sigma_counts") if k not in meta]
    if missing:
        raise ValueError(
            f"raw_xrf has no simulated noise model ({missing} missing from its metadata); set "
            "evaluation.tv_tuning.region: fine_tuning_region for measured data"
        )
    seed = int(truth.metadata.get("seed", 0)) + tuning.seed_offset
    sample = battery_phantom(truth.data.shape[-1], truth.voxel_size_nm, seed=seed)
    hr = sample.data[sample.elements.index(element)]
    angles = np.linspace(-90.0, 90.0, tuning.n_frames + 2)[1:-1]
    ref = reproject(hr, angles, progress=False) * truth.voxel_size_nm  # (frames, rows, det)
    probe = resample_probe(probe_intensity, truth.voxel_size_nm)
    step, fast_axis = int(meta["step_px"]), meta.get("fast_axis", "x")
    counts = meta["mean_counts"]
    mean = counts.get(element, next(iter(counts.values()))) if isinstance(counts, dict) else counts
    lr = simulate_counts(
        np.clip(flyscan(ref, probe.intensity, step, fast_axis=fast_axis), 0, None), mean_counts=float(mean or 200.0),
        background_counts=float(meta["background_counts"]), readout_sigma_counts=float(meta["readout_sigma_counts"]),
        seed=seed,
    )
    logger.info("TV tuning on a simulated sample (seed %d), %d projections", seed, len(angles))
    return tune_tv_weight(np.clip(lr, 0, None), ref, probe.intensity, step, list(tuning.weights),
                          n_iter=tuning.n_iter, fast_axis=fast_axis)


def tune_tv_for_evaluation(
    truth: Volume, raw_xrf: XRFStack, coarse: XRFStack, fine: XRFStack, probe_intensity: ProbeIntensity,
    element: str, fast_axis: Literal["x", "y"], tuning: TVTuning,
) -> tuple[float, pd.DataFrame]:
    """The TV weight from the configured tuning region; the sweep table says which."""
    if tuning.region == "simulated_region":
        weight, table = tune_tv_on_simulated_region(truth, raw_xrf, probe_intensity, element, tuning)
    elif tuning.region == "fine_tuning_region":
        weight, table = tune_tv_on_region(coarse, fine, probe_intensity, element, list(tuning.weights),
                                          tuning.n_frames, tuning.n_iter, fast_axis)
    else:
        raise ValueError(f"evaluation.tv_tuning.region must be simulated_region or fine_tuning_region, "
                         f"got {tuning.region!r}")
    return weight, table.assign(region=tuning.region)
