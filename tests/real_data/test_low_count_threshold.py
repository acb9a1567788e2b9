"""The measured low-count threshold (benchmarks/low_count.py) is the one the enhancement uses,
and the guard fires through the enhancement node below it: log, MLflow metric, figures."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from xrf_sr_kedro.physics.dose import SHOWN_MAX_COUNTS, SHOWN_MIN_COUNTS
from xrf_sr_kedro.pipelines.enhancement.nodes import ConsistencyParams, check_consistency
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

ROOT = Path(__file__).resolve().parents[2]


def _configured() -> ConsistencyParams:
    block = yaml.safe_load((ROOT / "conf" / "base" / "parameters_enhancement.yml").read_text())
    return ConsistencyParams(**{**block["enhancement"]["consistency"], "n_example_maps": 1})


def _measured(signal_counts: float) -> XRFStack:
    """Poisson counts of a 48 x 48 map: a sample (half the pixels) at ``signal_counts`` on a
    background of a tenth of it; the dose estimate reads the sample's level."""
    yy, xx = np.mgrid[:48, :48]
    sample = (xx < 24).astype(float) * (1.0 + 0.2 * np.sin(yy / 3.0))
    lam = signal_counts * (0.1 + 0.9 * sample)
    counts = np.random.default_rng(3).poisson(lam).astype(np.float32)
    return XRFStack(counts[None, None], 30.0, ("Zn_K",), None, "counts")


def test_configured_thresholds_are_the_measured_ones():
    params = _configured()
    assert params.shown_min_counts == SHOWN_MIN_COUNTS == 100.0
    assert params.shown_max_counts == SHOWN_MAX_COUNTS == 1000.0
    assert ConsistencyParams().shown_min_counts == params.shown_min_counts  # one default


@pytest.mark.parametrize("signal_counts, fires, words", [
    (30.0, True, "below 100"),       # where the study saw the network lose to TV
    (300.0, False, None),            # inside the shown range
    (3000.0, True, "above 1e+03"),   # beyond the highest dose tested
])
def test_guard_fires_outside_the_shown_range(signal_counts, fires, words, caplog):
    measured = _measured(signal_counts)
    # an "enhanced" stack that re-degrades to the measurement (4x nearest neighbour, step mode)
    fine = np.repeat(np.repeat(measured.data, 4, axis=2), 4, axis=3)
    enhanced = XRFStack(fine, 7.5, ("Zn_K",), None, "counts")
    probe = ProbeIntensity(np.ones((1, 1), np.float32), 7.5)
    params = ConsistencyParams(**{**vars(_configured()), "mode": "step"})
    with caplog.at_level(logging.WARNING):
        metrics, figures = check_consistency(measured, enhanced, probe, params)
    dose = metrics["consistency_dose_counts_per_pixel"][0]["value"]
    assert 0.8 * signal_counts < dose < 1.2 * signal_counts
    assert metrics["consistency_dose_outside_shown_range"][0]["value"] == float(fires)
    guard_logs = [r.message for r in caplog.records if "Low-count guard" in r.getMessage()]
    title = next(iter(figures.values()))._suptitle.get_text()
    if fires:
        assert guard_logs and words in caplog.text
        assert words in title
    else:
        assert not guard_logs
        assert "counts/pixel" not in title
