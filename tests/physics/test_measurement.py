"""physics/measurement.py (scan -> counts -> clip) and the scan-pair split of physics/pairs.py."""

from __future__ import annotations

import numpy as np
import pytest

from xrf_sr_kedro.physics.measurement import detector_counts, measure_stack
from xrf_sr_kedro.physics.noise import simulate_counts
from xrf_sr_kedro.physics.pairs import pairs_from_scans
from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.types import XRFStack


def test_detector_counts_are_simulate_counts_clipped_at_zero():
    rng = np.random.default_rng(0)
    expected = rng.random((32, 32))
    expected[0, 0] = -1e-9  # FFT round-off
    counts = detector_counts(expected, 50.0, 2.0, 3.0, seed=7)
    reference = simulate_counts(np.clip(expected, 0, None), 50.0, 2.0, 3.0, seed=7)
    assert counts.min() >= 0 and reference.min() < 0  # readout noise went below zero
    np.testing.assert_array_equal(counts, np.clip(reference, 0, None))
    assert counts.mean() == pytest.approx(52.0, rel=0.05)  # signal + background


def test_measure_stack_scans_each_element_at_the_step():
    truth = XRFStack(np.ones((2, 3, 32, 32), np.float32), 10.0, ("Zn_K", "Mn_K"),
                     angles_deg=np.array([0.0, 60.0, 120.0]))
    probe = gaussian_probe(fwhm_nm=30.0, pixel_size_nm=10.0)
    scan = dict(mean_counts={"Zn_K": 100.0, "Mn_K": 400.0}, seed=3)
    a = measure_stack(truth, probe, 4, **scan)
    assert a.data.shape == (2, 3, 8, 8) and a.pixel_size_nm == 40.0 and a.units == "counts"
    np.testing.assert_array_equal(a.angles_deg, truth.angles_deg)
    centre = a.data[:, :, 2:6, 2:6]  # away from the zero-padded border
    assert centre[1].mean() / centre[0].mean() == pytest.approx(4.0, rel=0.1)
    np.testing.assert_array_equal(a.data, measure_stack(truth, probe, 4, **scan).data)
    with pytest.raises(KeyError, match="no entry for element 'Mn_K'"):
        measure_stack(truth, probe, 4, mean_counts={"Zn_K": 1.0})


def _scan(n_frames: int, size: int, pixel_nm: float) -> XRFStack:
    rng = np.random.default_rng(size)
    return XRFStack(rng.random((1, n_frames, size, size)).astype(np.float32), pixel_nm, ("Zn_K",))


def test_pairs_from_scans_holds_out_every_nth_frame():
    coarse, fine = _scan(10, 8, 200.0), _scan(10, 32, 50.0)
    train, val = pairs_from_scans(coarse, fine, lr_patch_px=4, stride_px=4, validation_every=5)
    # frames 4 and 9 held out; 4 patches of 4 x 4 per 8 x 8 map
    assert len(train) == 8 * 4 and len(val) == 2 * 4
    assert train.scale == 4 and val.hr.shape[-1] == 16
    with pytest.raises(ValueError, match="not an integer zoom"):
        pairs_from_scans(coarse, _scan(10, 30, 50.0), lr_patch_px=4, stride_px=4, validation_every=5)
    with pytest.raises(ValueError, match="must cover the same frames"):
        pairs_from_scans(coarse, _scan(9, 32, 50.0), lr_patch_px=4, stride_px=4, validation_every=5)
