"""A simulated XRF measurement: fly-scan the truth, draw detector counts, clip at zero.

:func:`detector_counts` is the one place where expected signal becomes recorded
counts (used for the simulated tomography scans and for the pretraining pairs);
:func:`measure_stack` scans every map of a truth stack with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.noise import simulate_counts
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

__all__ = ["DEFAULT_MEAN_COUNTS", "detector_counts", "mean_counts_of", "measure_stack"]

#: Mean signal counts per scan point of an element line without a configured value.
DEFAULT_MEAN_COUNTS = 100.0


def detector_counts(expected: np.ndarray, *noise: Any, **noise_kw: Any) -> np.ndarray:
    """Counts a detector records for the noise-free ``expected`` signal.

    ``expected`` is clipped at 0 first (FFT round-off of the forward model leaves
    tiny negatives), Poisson and readout noise are drawn by
    :func:`~xrf_sr_kedro.physics.noise.simulate_counts` (which takes the remaining
    arguments: ``mean_counts``, ``background_counts``, ``readout_sigma_counts``,
    ``seed``), and the counts are clipped at 0 again: readout noise can push an
    empty pixel below zero, while a detector reports non-negative counts.

    Returns
    -------
    ndarray, float32, same shape as ``expected``, counts per pixel (>= 0)
    """
    return np.clip(simulate_counts(np.clip(expected, 0, None), *noise, **noise_kw), 0, None)


def mean_counts_of(mean_counts: dict[str, float] | None, element: str) -> float:
    """Mean counts per scan point of ``element`` (:data:`DEFAULT_MEAN_COUNTS` without a table)."""
    if mean_counts is None:
        return DEFAULT_MEAN_COUNTS
    if element not in mean_counts:
        raise KeyError(
            f"parameter mean_counts has no entry for element {element!r}; "
            f"it has {sorted(mean_counts)}"
        )
    return float(mean_counts[element])


def measure_stack(
    truth: XRFStack,
    probe: ProbeIntensity,
    step_px: int,
    *,
    fast_axis: str = "x",
    mode: str = "fly",
    n_substeps: int | None = None,
    mean_counts: dict[str, float] | None = None,
    background_counts: float = 0.0,
    readout_sigma_counts: float = 0.0,
    seed: int = 0,
) -> XRFStack:
    """Fly-scan every element map of ``truth`` and record detector counts.

    Parameters
    ----------
    truth : XRFStack
        Noise-free maps at the fine (truth) pixel size.
    probe : ProbeIntensity
        Resampled to ``truth.pixel_size_nm`` when its pixel size differs.
    step_px : int
        Scan step in truth pixels.
    fast_axis, mode, n_substeps
        As for :func:`~xrf_sr_kedro.physics.flyscan.flyscan`.
    mean_counts : dict of str to float, optional
        Mean counts per scan point of each element line (default
        :data:`DEFAULT_MEAN_COUNTS` for all).
    background_counts, readout_sigma_counts : float
        See :func:`~xrf_sr_kedro.physics.noise.simulate_counts` (counts).
    seed : int
        One generator for all elements, drawn in element order.

    Returns
    -------
    XRFStack
        Counts at ``truth.pixel_size_nm * step_px`` nm, same elements and angles,
        metadata recording the scan and noise settings.
    """
    if not np.isclose(probe.pixel_size_nm, truth.pixel_size_nm, rtol=1e-3):
        probe = resample_probe(probe, truth.pixel_size_nm)
    rng = np.random.default_rng(seed)
    measured = []
    for element, maps in zip(truth.elements, truth.data):
        expected = flyscan(
            maps, probe.intensity, step_px, fast_axis=fast_axis, mode=mode, n_substeps=n_substeps
        )
        measured.append(
            detector_counts(
                expected, mean_counts_of(mean_counts, element), background_counts,
                readout_sigma_counts, seed=rng,
            )
        )
    return XRFStack(
        data=np.stack(measured),
        pixel_size_nm=truth.pixel_size_nm * step_px,
        elements=truth.elements,
        angles_deg=truth.angles_deg,
        units="counts",
        metadata={
            "kind": "simulated fly-scan",
            "truth_pixel_size_nm": truth.pixel_size_nm,
            "step_px": step_px,
            "fast_axis": fast_axis,
            "scan_mode": mode,
            "probe_fwhm_nm": probe.metadata.get("fwhm_nm"),
            "mean_counts": mean_counts,
            "background_counts": background_counts,
            "readout_sigma_counts": readout_sigma_counts,
            "noise_seed": seed,
        },
    )
