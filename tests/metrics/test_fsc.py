"""Tests for xrf_sr_kedro.metrics.fsc (Fourier ring / shell correlation)."""

from __future__ import annotations

import numpy as np
import pytest

from xrf_sr_kedro.metrics.fsc import (
    fourier_ring_correlation,
    fourier_shell_correlation,
    half_bit_threshold,
    one_bit_threshold,
    resolution_nm,
    split_half_band_limit_nm,
    split_half_fsc,
)

SHAPES = {"2d": (96, 96), "3d": (40, 40, 40)}


def _radial_freq(shape):
    k2 = sum(
        np.fft.fftfreq(n).reshape([-1 if i == ax else 1 for i in range(len(shape))]) ** 2
        for ax, n in enumerate(shape)
    )
    return np.sqrt(k2)  # cycles / voxel


def _noisy_blurred_pair(shape, sigma_px, noise, seed, band_cycles=0.45):
    """Band-limited white phantom, Gaussian-blurred (periodic), plus 2 noise draws."""
    rng = np.random.default_rng(seed)
    k = _radial_freq(shape)
    spectrum = np.fft.fftn(rng.standard_normal(shape))
    spectrum *= k <= band_cycles
    spectrum *= np.exp(-2.0 * np.pi**2 * sigma_px**2 * k**2)
    blurred = np.fft.ifftn(spectrum).real
    # The band limit removes a fraction of the white variance; keep p/N explicit.
    signal_power = 1.0  # white-noise variance before filtering (per voxel)
    a = blurred + noise * rng.standard_normal(shape)
    b = blurred + noise * rng.standard_normal(shape)
    return a, b, signal_power


def _expected_resolution_px(table, sigma_px, noise, threshold_col):
    """Crossing of the analytic FSC g^2 / (g^2 + s^2) with the table's threshold."""
    f = table["freq_per_nm"].to_numpy() * table.attrs["voxel_size_nm"]  # cycles/voxel
    g2 = np.exp(-4.0 * np.pi**2 * sigma_px**2 * f**2)
    expected = g2 / (g2 + noise**2)
    fine = np.linspace(f[1], f[-1], 4000)
    diff = np.interp(fine, f, expected) - np.interp(fine, f, table[threshold_col].to_numpy())
    i = int(np.argmax(diff <= 0))
    return 1.0 / fine[i]


# --------------------------------------------------------------------- thresholds
@pytest.mark.parametrize("n", [1, 2, 10, 100, 1000, 1e6])
def test_thresholds_follow_van_heel_schatz_eq17(n):
    # General information threshold (van Heel & Schatz 2005, Eq. 17) with the
    # per-half SNR of 0.5 (one bit) and (sqrt(2) - 1) / 2 (half bit).
    def general(snr):
        return (snr + (2 * np.sqrt(snr) + 1) / np.sqrt(n)) / (snr + 1 + 2 * np.sqrt(snr) / np.sqrt(n))

    assert one_bit_threshold(n) == pytest.approx(general(0.5), abs=2e-4)
    assert half_bit_threshold(n) == pytest.approx(general((np.sqrt(2) - 1) / 2), abs=2e-4)


def test_thresholds_published_values():
    # Both curves start at 1 for a single voxel and tend to 1/3 and 0.1716
    # (= 0.2071 / 1.2071) for large shells, as in van Heel & Schatz (2005), Fig. 5.
    assert one_bit_threshold(1) == pytest.approx(1.0, abs=1e-4)
    assert half_bit_threshold(1) == pytest.approx(1.0, abs=1e-4)
    assert one_bit_threshold(1e12) == pytest.approx(1 / 3, abs=1e-4)
    assert half_bit_threshold(1e12) == pytest.approx(0.1716, abs=1e-4)
    # Values at a few shell sizes, from the published formulas.
    assert one_bit_threshold(100) == pytest.approx(0.74142 / 1.64142, abs=1e-6)
    assert half_bit_threshold(100) == pytest.approx(0.39812 / 1.29812, abs=1e-6)
    assert half_bit_threshold(np.array([4, 10_000])) == pytest.approx(
        [(0.2071 + 0.9551) / (1.2071 + 0.4551), (0.2071 + 0.019102) / (1.2071 + 0.009102)]
    )
    # Monotone decreasing in n, one-bit above half-bit.
    n = np.logspace(0, 6, 50)
    assert np.all(np.diff(one_bit_threshold(n)) < 0)
    assert np.all(one_bit_threshold(n[1:]) > half_bit_threshold(n[1:]))


# --------------------------------------------------------------------- table
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_table_columns_and_voxel_counts(dims):
    shape = SHAPES[dims]
    rng = np.random.default_rng(0)
    a = rng.random(shape)
    t = fourier_shell_correlation(a, a, voxel_size_nm=10.0)
    for col in ["freq_per_nm", "freq_fraction_nyquist", "fsc", "n_voxels", "one_bit",
                "half_bit", "fixed_0143"]:
        assert col in t.columns
    assert len(t) == shape[0] // 2 + 1
    assert t["freq_fraction_nyquist"].iloc[-1] == pytest.approx(1.0)
    assert t["freq_per_nm"].iloc[-1] == pytest.approx(0.5 / 10.0)
    assert t["n_voxels"].iloc[0] == 1
    # Counts agree with a direct count over the full FFT grid.
    shell = np.rint(_radial_freq(shape) * shape[0]).astype(int)
    direct = np.bincount(shell.ravel())[: len(t)]
    np.testing.assert_array_equal(t["n_voxels"].to_numpy(), direct)
    assert np.all(t["fixed_0143"] == 0.143)


@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_matches_full_fft_definition(dims):
    shape = (24, 20) if dims == "2d" else (12, 10, 14)  # non-cubic, odd and even
    rng = np.random.default_rng(3)
    a = rng.random(shape)
    b = a + 0.5 * rng.standard_normal(shape)
    t = fourier_shell_correlation(a, b, voxel_size_nm=5.0)
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    shell = np.rint(_radial_freq(shape) * max(shape)).astype(int)
    for i in range(len(t)):
        sel = shell == i
        num = np.real(np.sum(fa[sel] * np.conj(fb[sel])))
        den = np.sqrt(np.sum(np.abs(fa[sel]) ** 2) * np.sum(np.abs(fb[sel]) ** 2))
        assert t["fsc"].iloc[i] == pytest.approx(num / den, abs=1e-10)
        assert t["n_voxels"].iloc[i] == sel.sum()


# --------------------------------------------------------------------- identity
@pytest.mark.parametrize("dims", ["2d", "3d"])
@pytest.mark.parametrize("apodize", [False, True])
def test_self_fsc_is_one_and_resolution_is_nyquist(dims, apodize):
    rng = np.random.default_rng(1)
    a = rng.random(SHAPES[dims])
    t = fourier_shell_correlation(a, a, voxel_size_nm=12.5, apodize=apodize)
    # With apodisation the (weighted) mean is removed, so shell 0 has no power (NaN).
    fsc = t["fsc"].to_numpy()[1:] if apodize else t["fsc"].to_numpy()
    np.testing.assert_allclose(fsc, 1.0, atol=1e-12)
    assert np.isnan(t["fsc"].iloc[0]) == apodize
    for thr in ["one_bit", "half_bit", "0.143"]:
        assert resolution_nm(t, thr) == pytest.approx(2 * 12.5)


# --------------------------------------------------------------------- noise
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_independent_noise_falls_to_zero_and_crosses_early(dims):
    shape = SHAPES[dims]
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    t = fourier_shell_correlation(a, b, voxel_size_nm=10.0)
    high = t["fsc"].to_numpy()[len(t) // 4:]
    n_high = t["n_voxels"].to_numpy()[len(t) // 4:]
    # Scatter of the FSC of noise is ~ 1 / sqrt(n).
    assert abs(np.mean(high)) < 0.05
    assert np.all(np.abs(high) < 4.0 / np.sqrt(n_high))
    res = resolution_nm(t, "one_bit")
    fov_nm = shape[0] * 10.0
    assert res >= fov_nm / 4  # crossing within the first few shells
    assert resolution_nm(t, "half_bit") >= fov_nm / 6


# --------------------------------------------------------------------- blur
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_resolution_tracks_gaussian_blur(dims):
    shape = SHAPES[dims]
    voxel = 8.0
    noise = 0.1
    sigmas = [1.0, 1.5, 2.0] if dims == "2d" else [1.0, 1.5]
    measured, expected = [], []
    for k, sigma in enumerate(sigmas):
        a, b, _ = _noisy_blurred_pair(shape, sigma, noise, seed=10 + k)
        # a and b have unit signal variance in-band (white noise phantom); noise s.d. 0.1.
        t = split_half_fsc(a, b, voxel_size_nm=voxel)
        measured.append(resolution_nm(t, "one_bit"))
        expected.append(_expected_resolution_px(t, sigma, noise, "one_bit") * voxel)
    measured, expected = np.array(measured), np.array(expected)
    # Moves the right way ...
    assert np.all(np.diff(measured) > 0)
    # ... by about the expected amount (analytic FSC g^2/(g^2+s^2) vs threshold).
    np.testing.assert_allclose(measured, expected, rtol=0.06)
    # Resolution is roughly proportional to the blur width (the threshold varies
    # slowly with the shell size): 1/f = 2 pi sigma / sqrt(ln(...)).
    ratio = measured / np.array(sigmas)
    assert ratio.max() / ratio.min() < 1.3


def test_blurred_estimate_against_truth_is_worse():
    # Estimate vs ground truth: a sharper estimate gives a finer resolution.
    shape = SHAPES["2d"]
    rng = np.random.default_rng(5)
    truth = np.fft.ifftn(np.fft.fftn(rng.standard_normal(shape)) * (_radial_freq(shape) < 0.45)).real
    k = _radial_freq(shape)

    def blur(x, s):
        return np.fft.ifftn(np.fft.fftn(x) * np.exp(-2 * np.pi**2 * s**2 * k**2)).real

    sharp = blur(truth, 1.0) + 0.05 * rng.standard_normal(shape)
    soft = blur(truth, 2.5) + 0.05 * rng.standard_normal(shape)
    r_sharp = resolution_nm(fourier_shell_correlation(sharp, truth, 10.0))
    r_soft = resolution_nm(fourier_shell_correlation(soft, truth, 10.0))
    assert r_soft > 1.8 * r_sharp


# --------------------------------------------------------------------- units
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_resolution_in_nm_scales_with_voxel_size(dims):
    a, b, _ = _noisy_blurred_pair(SHAPES[dims], 1.5, 0.1, seed=7)
    r10 = resolution_nm(fourier_shell_correlation(a, b, voxel_size_nm=10.0))
    r25 = resolution_nm(fourier_shell_correlation(a, b, voxel_size_nm=25.0))
    assert r25 == pytest.approx(2.5 * r10, rel=1e-12)
    # In nm, between the Nyquist limit and the field of view.
    assert 2 * 10.0 < r10 < SHAPES[dims][0] * 10.0


def test_resolution_interpolates_between_shells():
    import pandas as pd

    t = pd.DataFrame(
        {
            "freq_per_nm": [0.0, 0.01, 0.02, 0.03],
            "freq_fraction_nyquist": [0.0, 1 / 3, 2 / 3, 1.0],
            "fsc": [1.0, 0.9, 0.5, 0.1],
            "one_bit": [1.0, 0.4, 0.4, 0.4],
            "half_bit": [1.0, 0.2, 0.2, 0.2],
            "fixed_0143": [0.143] * 4,
        }
    )
    # one_bit: diff 0.1 at f=0.02, -0.3 at f=0.03 -> crossing at 0.0225 cycles/nm.
    assert resolution_nm(t, "one_bit") == pytest.approx(1 / 0.0225)
    assert resolution_nm(t, "0.143") == pytest.approx(1 / (0.02 + 0.357 / 0.4 * 0.01))
    # Voxel size inferred from the Nyquist column: 1 / (2 * 0.03) = 16.67 nm -> 33.3 nm.
    t2 = t.assign(fsc=[1.0, 0.99, 0.99, 0.99])
    assert resolution_nm(t2, "one_bit") == pytest.approx(1 / 0.03)


def test_mask_and_apodization_run_and_keep_identity():
    rng = np.random.default_rng(4)
    a = rng.random((48, 48))
    yy, xx = np.mgrid[:48, :48]
    mask = ((yy - 24) ** 2 + (xx - 24) ** 2 < 20**2).astype(float)
    t = fourier_shell_correlation(a, a, 10.0, apodize=True, mask=mask)
    np.testing.assert_allclose(t["fsc"].iloc[1:], 1.0, atol=1e-12)
    assert np.isnan(t["fsc"].iloc[0])  # mean removed before masking
    t2 = fourier_ring_correlation(a, a + 0.2 * rng.standard_normal(a.shape), 10.0, mask=mask)
    assert np.all(t2["fsc"].iloc[1:5] > 0.5)


def test_input_validation():
    a = np.zeros((8, 8))
    with pytest.raises(ValueError, match="same shape"):
        fourier_shell_correlation(a, np.zeros((8, 9)), 1.0)
    with pytest.raises(ValueError, match="2-D"):
        fourier_shell_correlation(np.zeros(8), np.zeros(8), 1.0)
    with pytest.raises(ValueError, match="voxel_size_nm"):
        fourier_shell_correlation(a, a, -1.0)
    with pytest.raises(ValueError, match="mask"):
        fourier_shell_correlation(a, a, 1.0, mask=np.ones((4, 4)))
    with pytest.raises(ValueError, match="threshold"):
        resolution_nm(fourier_shell_correlation(a + 1, a + 1, 1.0), "three_sigma")


def test_band_limit_reads_only_the_band():
    import pandas as pd

    t = pd.DataFrame(
        {
            "freq_per_nm": [0.0, 0.01, 0.02, 0.03, 0.04],
            "freq_fraction_nyquist": [0.0, 0.25, 0.5, 0.75, 1.0],
            "fsc": [1.0, 0.9, 0.8, 0.1, 0.9],
            "one_bit": [1.0, 0.4, 0.4, 0.4, 0.4],
            "half_bit": [1.0, 0.2, 0.2, 0.2, 0.2],
            "fixed_0143": [0.143] * 5,
        }
    )
    # Whole band: crossing between 0.02 and 0.03 (diff 0.4 -> -0.3).
    assert resolution_nm(t, "one_bit") == pytest.approx(1 / (0.02 + 0.4 / 0.7 * 0.01))
    # A band that holds the crossing reads the same.
    assert resolution_nm(t, "one_bit", band_limit_nm=1 / 0.03) == pytest.approx(1 / (0.02 + 0.4 / 0.7 * 0.01))
    # A band that ends before it reads its own limit, not the Nyquist limit (25 nm: 1 / 0.04).
    assert resolution_nm(t, "one_bit", band_limit_nm=50.0) == pytest.approx(50.0)
    # Correlation beyond the band (a spectral image at 0.04) cannot hide a crossing inside it.
    t2 = t.assign(fsc=[1.0, 0.9, 0.1, 0.1, 0.99])
    assert resolution_nm(t2, "one_bit", band_limit_nm=40.0) == pytest.approx(1 / (0.01 + 0.5 / 0.8 * 0.01))
    with pytest.raises(ValueError, match="band_limit_nm"):
        resolution_nm(t, "one_bit", band_limit_nm=20.0)  # finer than the 25 nm Nyquist limit
    # A band limit at the Nyquist limit of a voxel size inferred from the table (no attrs) is the whole band.
    t3 = t.assign(fsc=[1.0, 0.9, 0.8, 0.7, 0.9])
    assert resolution_nm(t3, "one_bit", band_limit_nm=25.0 * (1 - 1e-9)) == pytest.approx(25.0)


def test_split_half_band_limit_is_the_measured_nyquist():
    assert split_half_band_limit_nm(30.0, 7.5) == pytest.approx(60.0)
    assert split_half_band_limit_nm(30.0, 30.0) == pytest.approx(60.0)
    assert split_half_band_limit_nm(7.5, 30.0) == pytest.approx(60.0)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="measured_pixel_nm"):
            split_half_band_limit_nm(bad, 7.5)


@pytest.mark.parametrize("noise", [0.1, 0.3])
def test_upsampled_halves_agree_beyond_the_measured_band_and_the_band_limit_reads_their_noise(noise):
    """Why the band limit: two halves with independent noise, each upsampled 4x by
    bicubic interpolation.  The upsampled maps hold nothing beyond the coarse Nyquist
    limit, yet with little noise their FRC over the whole fine band never falls below
    the threshold (spectral images of their shared content at the coarse sampling
    frequency, and the interpolation of what they share): it reads the fine voxel's
    Nyquist limit.  Read up to the coarse Nyquist limit, it says what the coarse halves
    say (a linear filter cancels in the FRC)."""
    from xrf_sr_kedro.baselines import bicubic_upsample

    rng = np.random.default_rng(11)
    n, scale, pixel_nm = 64, 4, 30.0
    yy, xx = np.mgrid[:n, :n]
    obj = np.zeros((n, n))
    for _ in range(20):  # disks: sharp edges, signal up to the coarse Nyquist limit
        cy, cx, r = rng.uniform(6, n - 6, 2).tolist() + [rng.uniform(1.5, 6.0)]
        obj += (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    halves = [obj + rng.normal(0, noise, obj.shape) for _ in range(2)]
    coarse = resolution_nm(fourier_ring_correlation(*halves, pixel_nm, apodize=True))
    fine = [bicubic_upsample(h, scale) for h in halves]
    curve = fourier_ring_correlation(*fine, pixel_nm / scale, apodize=True)
    limit = split_half_band_limit_nm(pixel_nm, pixel_nm / scale)
    banded = resolution_nm(curve, band_limit_nm=limit)
    assert banded == pytest.approx(coarse, rel=0.02)
    if noise == 0.1:  # the coarse halves agree over their whole band
        assert coarse == pytest.approx(limit)
        assert resolution_nm(curve) == pytest.approx(2 * pixel_nm / scale)  # saturated: not a measurement
    else:  # the noise ends the agreement inside the band, where both readings see it
        assert coarse > 1.5 * limit
        assert resolution_nm(curve) == pytest.approx(banded)
