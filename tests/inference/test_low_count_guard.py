"""The consistency check compares its residual with the Poisson noise of the data's dose."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from xrf_sr_kedro.inference.consistency import consistency_report, noise_check
from xrf_sr_kedro.types import ProbeIntensity, XRFStack


def _stack(dose: float, seed: int = 0) -> tuple[XRFStack, np.ndarray]:
    """Poisson counts of a smooth map of mean ``dose`` (64 x 64, one frame)."""
    yy, xx = np.mgrid[:64, :64] / 64.0
    lam = dose * (1.0 + 0.3 * np.sin(2 * np.pi * yy) * np.cos(2 * np.pi * xx))
    counts = np.random.default_rng(seed).poisson(lam).astype(np.float32)
    return XRFStack(counts[None, None], 100.0, ("Fe_K",), None, "counts"), lam


@pytest.mark.parametrize("dose", [20.0, 500.0])
def test_the_truth_sits_at_the_poisson_level(dose):
    stack, lam = _stack(dose)
    m = stack.data[0, 0]
    truth_residual = np.linalg.norm(lam - m) / np.linalg.norm(m)
    values, notes = noise_check(stack, truth_residual, shown_min_counts=100.0)
    assert values["residual_vs_noise"] == pytest.approx(1.0, abs=0.15)
    assert "consistent with noise" in notes[0]
    low = dose < 100.0
    assert values["dose_outside_shown_range"] == float(low)
    assert (len(notes) == 2) == low
    if low:
        assert "below 100" in notes[1]
    # the dose where the sample is: at or above the mean
    assert dose <= values["dose_counts_per_pixel"] < 1.4 * dose


def test_a_residual_far_above_noise_is_flagged(caplog):
    stack, _ = _stack(500.0)
    with caplog.at_level(logging.WARNING, logger="xrf_sr_kedro.inference.consistency"):
        values, notes = noise_check(stack, 0.2, shown_min_counts=100.0)
    assert values["residual_vs_noise"] > 3
    assert "disagree with the data beyond noise" in notes[0]
    assert any("beyond noise" in r.message for r in caplog.records)


def test_report_carries_the_noise_metrics_and_the_warning_on_figures():
    stack, lam = _stack(20.0)
    probe = ProbeIntensity(np.ones((1, 1), np.float32), 25.0)
    fine = np.repeat(np.repeat(stack.data, 4, axis=2), 4, axis=3)  # counts per coarse px
    enhanced = XRFStack(fine, 25.0, ("Fe_K",), None, "counts")
    metrics, figures = consistency_report(stack, enhanced, probe, mode="step",
                                          n_example_maps=1, shown_min_counts=100.0)
    assert metrics["consistency_dose_outside_shown_range"][0]["value"] == 1.0
    assert metrics["consistency_poisson_expected_residual"][0]["value"] > 0.1
    title = next(iter(figures.values()))._suptitle.get_text()
    assert "below 100" in title
