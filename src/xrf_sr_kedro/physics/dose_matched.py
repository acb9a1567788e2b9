"""Fine-tuning pairs at the measured data's own dose (issue 13, item 3).

Pretraining sees doses over two decades (:data:`~xrf_sr_kedro.physics.application_pairs.
DEFAULT_COUNTS_RANGE`, 20-2000 counts per scan point) and natural images, because the
pretrained network must serve any measurement.  A measurement has one dose per element
line, known before any training from its own counts
(:func:`~xrf_sr_kedro.physics.dose.estimate_dose`).  :func:`dose_matched_pairs` makes
application-scale pairs (projected 3-D particle packings, fly-scanned 7.5 nm -> 30 nm
with the project's probe, :func:`~xrf_sr_kedro.physics.application_pairs.training_pairs`)
whose doses are drawn log-uniformly in a band around the measured doses:
``[min(dose) / band_factor, max(dose) * band_factor]``.  The measured maps give only
their dose: no pixel of them enters a pair.  The packings use their own seed (not the
pretraining's, refused if it is the validation region's), so fine-tuning sees new
samples.  docs/models.md ("Fine-tuning at the measured dose") has the measurements.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Literal

from xrf_sr_kedro.physics.application_pairs import (
    DEFAULT_BACKGROUND_COUNTS,
    DEFAULT_HF_NOISE_GAIN,
    DEFAULT_READOUT_SIGMA_COUNTS,
    training_pairs,
)
from xrf_sr_kedro.physics.dose import estimate_dose
from xrf_sr_kedro.physics.particle_packings import DEFAULT_ANGLES_PER_VOLUME
from xrf_sr_kedro.types import PatchPairs, ProbeIntensity, XRFStack

logger = logging.getLogger(__name__)

__all__ = ["DoseMatchedSettings", "measured_dose_band", "dose_matched_pairs"]


@dataclass(frozen=True)
class DoseMatchedSettings:
    """How the dose-matched fine-tuning pairs are made (one source for the defaults).

    ``band_factor``: the doses span ``[min measured / f, max measured * f]`` counts per
    scan point; ``n_volumes`` packings with ``angles_per_volume`` projections each,
    ``n_elements`` maps a projection, cropped to ``size_px`` fine pixels (7.5 nm);
    ``reprojection_fraction`` of the pairs get reprojection-like (low-pass) noise, as
    in pretraining, for the 3-D chain's reprojections.
    """

    band_factor: float = 2.0
    n_volumes: int = 300
    angles_per_volume: int = DEFAULT_ANGLES_PER_VOLUME
    n_elements: int = 2
    size_px: int = 128
    seed: int = 3
    validation_seed: int = 2
    step_px: int = 4
    background_counts: float = DEFAULT_BACKGROUND_COUNTS
    readout_sigma_counts: float = DEFAULT_READOUT_SIGMA_COUNTS
    reprojection_fraction: float = 0.5
    hf_noise_gain: float = DEFAULT_HF_NOISE_GAIN
    fast_axis: Literal["x", "y"] = "x"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.band_factor) and self.band_factor >= 1.0):
            raise ValueError(
                f"parameter dose_matched_pairs.band_factor must be >= 1, got {self.band_factor!r}"
            )
        if self.seed == self.validation_seed:
            raise ValueError(
                f"parameter dose_matched_pairs.seed {self.seed} is the validation region's seed; "
                "pick another"
            )


def measured_dose_band(measured: XRFStack, band_factor: float) -> tuple[tuple[float, float], dict[str, float]]:
    """The counts band ``(low, high)`` around the measured doses, and the dose of each element.

    Each element's dose is its mean counts per scan point over every map
    (:func:`~xrf_sr_kedro.physics.dose.estimate_dose`: from the values for raw counts,
    from the noise otherwise), the quantity the application pairs' doses are drawn in.
    """
    doses = {
        element: estimate_dose(measured.data[k], measured.units).mean_counts_per_pixel
        for k, element in enumerate(measured.elements)
    }
    if not doses or min(doses.values()) <= 0:
        raise ValueError(
            f"measured maps carry no counts ({doses}); cannot match the fine-tuning dose to them"
        )
    band = (min(doses.values()) / band_factor, max(doses.values()) * band_factor)
    return band, doses


def dose_matched_pairs(
    measured: XRFStack, probe: ProbeIntensity, settings: DoseMatchedSettings = DoseMatchedSettings()
) -> PatchPairs:
    """Packing pairs at the dose of ``measured`` (module docstring); metadata records the
    measured doses (``measured_dose_counts_per_point``) and the band."""
    band, doses = measured_dose_band(measured, settings.band_factor)
    logger.info(
        "dose-matched fine-tuning pairs: measured %s counts per scan point -> doses %.0f-%.0f",
        ", ".join(f"{e} {d:.0f}" for e, d in doses.items()), *band,
    )
    s = settings
    pairs = training_pairs(
        probe, None, 0.0, 0, s.size_px, s.n_elements, s.seed, s.validation_seed, 0.5, s.step_px, band,
        s.background_counts, s.readout_sigma_counts, s.reprojection_fraction, s.hf_noise_gain,
        s.fast_axis, s.n_volumes, s.angles_per_volume, None,
    )
    meta = dict(pairs.metadata, source="dose_matched_packings",
                measured_dose_counts_per_point=doses, dose_band_factor=float(s.band_factor))
    return replace(pairs, metadata=meta)
