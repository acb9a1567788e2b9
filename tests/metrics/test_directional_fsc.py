"""Directional FSC (axial cone / equatorial band) and the Crowther limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xrf_sr_kedro.metrics.directional_fsc import crowther_limit_nm, directional_fsc, fsc_all_directions
from xrf_sr_kedro.metrics.fsc import fourier_shell_correlation, resolution_nm


def _blurred_noisy(shape, sigma_axes_px, noise, seed):
    """White truth; estimate = truth blurred by an anisotropic Gaussian + noise."""
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal(shape)
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    transfer = np.exp(-2 * np.pi**2 * sum(s**2 * g**2 for s, g in zip(sigma_axes_px, grids)))
    blurred = np.fft.ifftn(np.fft.fftn(truth) * transfer).real
    return blurred + noise * rng.standard_normal(shape), truth


@pytest.mark.parametrize(
    "sigma, finer",
    [((2.5, 0.0, 0.0), "equatorial"),  # blurred along the rotation axis only
     ((0.0, 2.5, 2.5), "axial")],     # blurred in the slice plane only
)
def test_anisotropic_blur_is_finer_along_the_unblurred_direction(sigma, finer):
    estimate, truth = _blurred_noisy((40, 40, 40), sigma, noise=0.3, seed=4)
    res = {
        d: resolution_nm(directional_fsc(estimate, truth, 10.0, d, cone_half_angle_deg=30.0), min_shell=2)
        for d in ("axial", "equatorial")
    }
    coarser = "axial" if finer == "equatorial" else "equatorial"
    # blur of 2.5 px at this noise level moves the crossing well away from Nyquist
    assert res[finer] < 0.6 * res[coarser], res
    assert res[finer] <= 30.0  # the unblurred direction stays near Nyquist (20 nm)


def test_isotropic_volume_gives_the_same_resolution_in_both_directions():
    estimate, truth = _blurred_noisy((40, 40, 40), (1.5, 1.5, 1.5), noise=0.3, seed=5)
    # shell 1 of a 30-degree cone holds one Friedel pair (its threshold is 0.88): skip it
    ax = resolution_nm(directional_fsc(estimate, truth, 10.0, "axial", 30.0), min_shell=2)
    eq = resolution_nm(directional_fsc(estimate, truth, 10.0, "equatorial", 30.0), min_shell=2)
    full = resolution_nm(fourier_shell_correlation(estimate, truth, 10.0))
    assert ax == pytest.approx(eq, rel=0.12)
    assert full == pytest.approx(eq, rel=0.12)


def test_cone_and_band_partition_the_shell_at_45_degrees():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 24, 24, 24))
    ax = directional_fsc(a, b, 1.0, "axial", 45.0)
    eq = directional_fsc(a, b, 1.0, "equatorial", 45.0)
    full = fourier_shell_correlation(a, b, 1.0)
    # only voxels exactly at 45 degrees are counted twice
    assert np.all(ax.n_voxels + eq.n_voxels >= full.n_voxels)
    assert (ax.n_voxels + eq.n_voxels - full.n_voxels).sum() < 0.1 * full.n_voxels.sum()
    # the axial cone of 30 degrees holds about 1 - cos 30 = 13 % of a large shell
    frac = directional_fsc(a, b, 1.0, "axial", 30.0).n_voxels[8:12].sum() / full.n_voxels[8:12].sum()
    assert frac == pytest.approx(1 - np.cos(np.pi / 6), abs=0.04)


def test_directional_validates():
    a = np.zeros((8, 8, 8))
    with pytest.raises(ValueError, match="direction"):
        directional_fsc(a, a, 1.0, "radial")
    with pytest.raises(ValueError, match="cone_half_angle_deg"):
        directional_fsc(a, a, 1.0, "axial", 0.0)


def test_crowther_limit():
    # the default pillar: 64 px x 30 nm, 91 angles -> 66 nm (issue 12)
    assert crowther_limit_nm(64 * 30.0, 91) == pytest.approx(66.3, abs=0.1)
    assert crowther_limit_nm(1000.0, 2 * 91) == pytest.approx(crowther_limit_nm(1000.0, 91) / 2)
    with pytest.raises(ValueError, match="n_angles"):
        crowther_limit_nm(1000.0, 0)


def test_empty_shells_of_a_non_cubic_array_are_not_a_crossing():
    # a slab (half as tall as wide): in the axial cone only every other shell meets the
    # short axis's frequencies; identical volumes must reach Nyquist, not stop at the
    # first empty shell
    rng = np.random.default_rng(3)
    vol = rng.random((16, 32, 32))
    table = directional_fsc(vol, vol, 7.5, "axial", cone_half_angle_deg=30.0)
    assert (table["n_voxels"].to_numpy()[1:] == 0).any()  # the case under test exists
    assert resolution_nm(table, "one_bit") == pytest.approx(15.0)


@pytest.mark.parametrize("apodize, use_mask", [(False, False), (True, True)])
def test_all_directions_at_once_equal_the_separate_tables(apodize, use_mask):
    """The evaluation's one-FFT scoring gives the tables of the three separate calls."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((12, 20, 18))
    b = a + 0.7 * rng.standard_normal(a.shape)
    mask = (rng.random(a.shape) > 0.2).astype(float) if use_mask else None
    tables = fsc_all_directions(a, b, 7.5, 25.0, apodize, mask)
    pd.testing.assert_frame_equal(tables["all"], fourier_shell_correlation(a, b, 7.5, apodize, mask))
    for d in ("axial", "equatorial"):
        expected = directional_fsc(a, b, 7.5, d, 25.0, apodize, mask)
        pd.testing.assert_frame_equal(tables[d], expected)
        assert tables[d].attrs == expected.attrs
    assert not tables["axial"]["n_voxels"].equals(tables["all"]["n_voxels"])  # a real subset
