"""Rotation-centre estimates on noise-free off-centre sinograms of a known phantom."""

import numpy as np
import pytest

from xrf_sr_kedro.tomo.centre import (
    centre_scan,
    find_center,
    opposite_angle_offset,
    sinusoid_offset,
)
from xrf_sr_kedro.tomo.reproject import reproject


def _sino(offset, angles, n=64, n_det=96):
    yy, xx = np.mgrid[:n, :n] + 0.5 - n / 2
    img = np.zeros((n, n), np.float32)
    for cy, cx, r, v in [(-8, 5, 6, 1.0), (10, -6, 4, 0.7), (3, 12, 3, 0.5)]:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] += v
    return reproject(img[None], angles, n_det=n_det, center_offset_px=offset,
                     device="cpu", progress=False)[:, 0]


@pytest.mark.parametrize("offset", [-11.3, 0.0, 7.6])
def test_sinusoid_and_opposite_angles_are_subpixel(offset):
    angles = np.linspace(-90, 90, 37)  # includes the pair -90 / 90
    s = _sino(offset, angles)
    assert sinusoid_offset(s, angles) == pytest.approx(offset, abs=0.05)
    assert opposite_angle_offset(s, angles) == pytest.approx(offset, abs=0.05)
    assert opposite_angle_offset(s[:-1], angles[:-1]) is None  # no pair left


def test_trial_scan_minimum_at_the_true_centre():
    angles = np.arange(36) * 5.0
    s = _sino(9.0, angles)
    offsets = np.arange(0.0, 18.5, 1.0)
    images, scores = centre_scan(s, angles, offsets)
    assert offsets[np.argmin(scores)] == 9.0
    assert images.shape == (offsets.size, 96, 96)


def test_find_center_without_pairs_and_with_rows():
    angles = np.arange(36) * 5.0
    s = _sino(-14.2, angles)
    result = find_center(np.repeat(s[:, None, :], 3, axis=1), angles)
    assert result.offset_px == pytest.approx(-14.2, abs=0.1)
    assert abs(result.estimates_px["trial_scan"] + 14.2) < 1.0
    assert "opposite_angles" not in result.estimates_px
    assert result.method.startswith("sinusoid_com")
