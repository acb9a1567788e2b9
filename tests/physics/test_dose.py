"""Dose estimate and the Poisson-only consistency residual, against simulation."""

import numpy as np
import pytest

from xrf_sr_kedro.metrics.image import consistency_residual
from xrf_sr_kedro.physics.dose import (
    dose_guard,
    estimate_dose,
    expected_poisson_residual,
    expected_poisson_residual_from_counts,
    residual_vs_noise,
)


def _truth(dose, n=96, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    lam = dose * (1.0 + 0.5 * np.sin(xx / 9.0) * np.cos(yy / 13.0))
    return lam, rng.poisson(lam).astype(np.float64)


@pytest.mark.parametrize("dose", [10.0, 100.0, 1000.0])
def test_noise_free_truth_has_the_poisson_residual(dose):
    lam, m = _truth(dose)
    _, rel, _ = consistency_residual(m, lam)  # a perfect enhancement, re-degraded
    cv = lam.std() / lam.mean()
    assert rel == pytest.approx(expected_poisson_residual(dose, cv), rel=0.03)
    assert rel == pytest.approx(expected_poisson_residual_from_counts(m), rel=0.03)


@pytest.mark.parametrize("dose,gain", [(20.0, 1.0), (20.0, 0.37), (500.0, 12.0)])
def test_dose_from_noise_of_scaled_maps(dose, gain):
    lam, m = _truth(dose, seed=1)
    est = estimate_dose(m * gain, units="fitted counts")
    assert est.gain == pytest.approx(gain, rel=0.1)
    assert est.mean_counts_per_pixel == pytest.approx(dose, rel=0.1)
    raw = estimate_dose(m, units="counts")
    assert raw.gain == 1.0 and raw.mean_counts_per_pixel == pytest.approx(dose, rel=0.02)


def test_verdict_flags_residual_above_noise():
    ratio, text = residual_vs_noise(0.222, 0.07)
    assert ratio == pytest.approx(3.17, rel=0.01) and "beyond noise" in text
    assert "consistent with noise" in residual_vs_noise(0.065, 0.07)[1]
    with pytest.raises(ValueError, match="dose_counts_per_pixel must be positive"):
        expected_poisson_residual(0.0)


def test_dose_guard_warns_below_the_shown_range():
    _, low = _truth(5.0, seed=2)
    _, high = _truth(300.0, seed=2)
    assert "below 10" in dose_guard(estimate_dose(low), 10.0, 1000.0)
    assert dose_guard(estimate_dose(high), 10.0, 1000.0) is None
    assert "above 100" in dose_guard(estimate_dose(high), 10.0, 100.0)
