"""Fine-tuning pairs at the measured dose: the band comes from the measured counts only."""

from __future__ import annotations

import numpy as np
import pytest

from xrf_sr_kedro.physics.dose_matched import DoseMatchedSettings, dose_matched_pairs, measured_dose_band
from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.types import XRFStack


def _measured(means=(150.0, 300.0), seed=0) -> XRFStack:
    rng = np.random.default_rng(seed)
    shape = rng.random((6, 32, 32)) + 0.5  # a structured, positive signal
    data = np.stack([rng.poisson(m * shape / shape.mean()) for m in means]).astype(np.float32)
    return XRFStack(data, 30.0, ("Zn_K", "Mn_K"), np.linspace(-90, 90, 6), units="counts")


def test_band_spans_the_measured_doses_by_the_factor():
    band, doses = measured_dose_band(_measured(), 2.0)
    assert doses["Zn_K"] == pytest.approx(150.0, rel=0.02) and doses["Mn_K"] == pytest.approx(300.0, rel=0.02)
    assert band[0] == pytest.approx(doses["Zn_K"] / 2) and band[1] == pytest.approx(doses["Mn_K"] * 2)
    # ten times the dose: ten times the band
    band10, _ = measured_dose_band(_measured((1500.0, 3000.0)), 2.0)
    assert band10[0] == pytest.approx(10 * band[0], rel=0.03) and band10[1] == pytest.approx(10 * band[1], rel=0.03)
    with pytest.raises(ValueError, match="no counts|zero everywhere"):
        measured_dose_band(XRFStack(np.zeros((1, 2, 16, 16), np.float32), 30.0, ("Zn_K",), units="counts"), 2.0)


def test_pairs_are_drawn_in_the_band_from_packings_not_from_the_measurement():
    measured = _measured()
    settings = DoseMatchedSettings(n_volumes=2, angles_per_volume=1, size_px=32, band_factor=1.5)
    pairs = dose_matched_pairs(measured, gaussian_probe(20.0, 7.5), settings)
    band, doses = measured_dose_band(measured, 1.5)
    assert pairs.metadata["counts_range"] == pytest.approx(list(band))
    assert all(band[0] <= d <= band[1] for d in pairs.metadata["mean_counts"])
    assert pairs.metadata["measured_dose_counts_per_point"] == pytest.approx(doses)
    assert pairs.metadata["source"] == "dose_matched_packings"
    assert len(pairs) == 2 * 1 * 2 and pairs.lr.shape[-1] == 8 and pairs.hr.shape[-1] == 32
    # the same settings on a measurement with other counts but the same dose: the same pairs
    again = dose_matched_pairs(_measured(seed=1), gaussian_probe(20.0, 7.5), settings)
    assert np.abs(again.metadata["counts_range"][0] - band[0]) < 0.05 * band[0]


def test_settings_refuse_the_validation_seed_and_a_band_below_one():
    with pytest.raises(ValueError, match="validation region"):
        DoseMatchedSettings(seed=2, validation_seed=2)
    with pytest.raises(ValueError, match="band_factor"):
        DoseMatchedSettings(band_factor=0.5)
