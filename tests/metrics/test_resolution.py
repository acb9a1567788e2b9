"""Rayleigh criterion on known feature pairs (xrf_sr_kedro.metrics.resolution)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from xrf_sr_kedro.metrics.resolution import (
    FeaturePair,
    finest_resolved_pair_nm,
    project_pair,
    rayleigh_table,
)

PX = 10.0  # nm


def _rod_pair_image(w_px, sigma_px, noise=0.0, seed=0, background=5.0):
    """Two vertical rods (along axis 0) of width w and gap w on a constant background."""
    img = np.full((64, 96), background)
    x0 = 30
    img[12:52, x0 : x0 + w_px] += 1.0
    img[12:52, x0 + 2 * w_px : x0 + 3 * w_px] += 1.0
    img = gaussian_filter(img, sigma_px, mode="nearest") if sigma_px else img
    img += noise * np.random.default_rng(seed).standard_normal(img.shape)
    pair = FeaturePair(
        name=f"rods {2 * w_px * PX:g} nm", direction="equatorial", separation_nm=2 * w_px * PX,
        width_nm=w_px * PX, centre_a_nm=(32 * PX, (x0 + w_px / 2) * PX),
        centre_b_nm=(32 * PX, (x0 + 2.5 * w_px) * PX), along=(1.0, 0.0), half_length_nm=15 * PX,
    )
    return img, pair


@pytest.mark.parametrize("w_px", [3, 4, 6])
def test_sharp_pairs_resolve_and_blurred_pairs_do_not(w_px):
    sharp, pair = _rod_pair_image(w_px, sigma_px=0.5 * w_px / 2, noise=0.02)
    blurred, _ = _rod_pair_image(w_px, sigma_px=1.0 * w_px, noise=0.02)
    ok = rayleigh_table(sharp, PX, [pair]).iloc[0]
    bad = rayleigh_table(blurred, PX, [pair]).iloc[0]
    assert ok.resolved and ok.dip > 0.5
    assert not bad.resolved and bad.dip < 0.265


def test_dip_tracks_the_gaussian_limit():
    # two Gaussian lines of s.d. s, d apart: the dip reaches 26.5 % near d = 2.6 s
    img = np.zeros((8, 200))
    x = np.arange(200) + 0.5
    s = 4.0
    for d, expect in ((8.0, False), (13.0, True)):  # d / s = 2.0 (no dip), 3.25 (deep)
        img[:] = np.exp(-0.5 * ((x - 80) / s) ** 2) + np.exp(-0.5 * ((x - 80 - d) / s) ** 2)
        pair = FeaturePair("g", "equatorial", d * PX, d / 2 * PX, (4 * PX, 80 * PX),
                           (4 * PX, (80 + d) * PX), (1.0, 0.0), 2 * PX)
        assert bool(rayleigh_table(img, PX, [pair]).resolved.iloc[0]) == expect


def test_pixels_as_large_as_the_gap_cannot_resolve_a_straddled_pair():
    img, pair = _rod_pair_image(2, sigma_px=0)  # rods 20 nm, gap 20 nm at 10 nm pixels
    assert rayleigh_table(img, PX, [pair]).resolved.iloc[0]
    # bin 2 x 2 with the pair offset by one fine pixel: every coarse pixel half rod, half gap
    coarse = img[:, 1:95].reshape(32, 2, 47, 2).mean(axis=(1, 3))
    moved = FeaturePair(**{**pair.__dict__, "centre_a_nm": (pair.centre_a_nm[0], pair.centre_a_nm[1] - PX),
                           "centre_b_nm": (pair.centre_b_nm[0], pair.centre_b_nm[1] - PX)})
    assert not rayleigh_table(coarse, 2 * PX, [moved]).resolved.iloc[0]


def test_axial_disc_pair_in_a_volume_and_finest_pair():
    vol = np.zeros((48, 24, 24))
    pairs = []
    for k, (w, z0) in enumerate(((2, 4), (4, 20))):
        vol[z0 : z0 + w, 6:18, 6:18] = 1.0
        vol[z0 + 2 * w : z0 + 3 * w, 6:18, 6:18] = 1.0
        pairs.append(FeaturePair(f"discs {k}", "axial", 2 * w * PX, w * PX, ((z0 + w / 2) * PX, 12 * PX, 12 * PX),
                                 ((z0 + 2.5 * w) * PX, 12 * PX, 12 * PX), (0.0, 0.0, 1.0), 4 * PX))
    sharp = rayleigh_table(vol, PX, pairs)
    assert sharp.resolved.all()
    assert finest_resolved_pair_nm(sharp) == 40.0
    # blur along the axis only: the fine pair fails, the coarse one survives
    blurred = rayleigh_table(gaussian_filter(vol, (1.8, 0, 0)), PX, pairs)
    assert blurred.resolved.tolist() == [False, True]
    assert finest_resolved_pair_nm(blurred) == 80.0
    assert finest_resolved_pair_nm(blurred, direction="equatorial") != finest_resolved_pair_nm(blurred)
    # blur in the slice plane only leaves the axial pairs resolved
    assert rayleigh_table(gaussian_filter(vol, (0, 3, 3)), PX, pairs).resolved.all()


def test_projected_pair_positions_follow_the_projector():
    from xrf_sr_kedro.tomo.reproject import reproject

    n = 32
    vol = np.zeros((8, n, n), dtype=np.float32)
    vol[:, 10, 20:23] = 1.0  # a rod along the axis at (y=10, x=21)
    pair = FeaturePair("p", "equatorial", 30.0, 10.0, (4 * PX, 10.5 * PX, 21.5 * PX),
                       (4 * PX, 10.5 * PX, 24.5 * PX), (1.0, 0.0, 0.0), 0.0)
    for angle in (0.0, 30.0):
        proj = reproject(vol, np.array([angle]), progress=False)[0]  # (rows, det)
        seen = project_pair(pair, angle, n * PX)
        col = seen.centre_a_nm[1] / PX - 0.5
        assert abs(np.argmax(proj[4]) - col) <= 1.0, (angle, np.argmax(proj[4]), col)
    assert project_pair(pair, 60.0, n * PX).separation_nm == pytest.approx(15.0)


def test_noise_and_checkerboards_do_not_count_as_resolved_pairs():
    _, pair = _rod_pair_image(3, sigma_px=0)
    rng = np.random.default_rng(7)
    noise = 5.0 + rng.standard_normal((64, 96))
    checker = 5.0 + (np.indices((64, 96)).sum(axis=0) % 2)
    for img in (noise, checker):
        assert not rayleigh_table(img, PX, [pair]).resolved.iloc[0]
    # the pair on top of the checkerboard, strong enough, is still found
    rods, _ = _rod_pair_image(3, sigma_px=0.5, background=0.0)
    assert rayleigh_table(checker + 20 * rods, PX, [pair]).resolved.iloc[0]
