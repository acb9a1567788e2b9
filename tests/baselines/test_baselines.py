"""Classical baselines: interpolation, Richardson-Lucy re-export, TV deconvolution."""

from __future__ import annotations

import numpy as np
import pytest

from xrf_sr_kedro.baselines import (
    bicubic_upsample,
    nearest_upsample,
    richardson_lucy_sr,
    trilinear_upsample,
    tune_tv_weight,
    tv_deconvolution_sr,
)
from xrf_sr_kedro.baselines.tv import divergence, gradient
from xrf_sr_kedro.metrics.image import match_intensity, psnr
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.noise import simulate_counts
from xrf_sr_kedro.physics.probe import gaussian_probe


def _noisy_map(seed: int, n: int = 64, counts: float = 100.0):
    """Piecewise-constant particles (the TV model's home ground) fly-scanned 4x + Poisson."""
    rng = np.random.default_rng(seed)
    x = np.full((n, n), 0.1)
    yy, xx = np.mgrid[:n, :n]
    for _ in range(10):
        cy, cx = rng.uniform(8, n - 8, 2)
        r = rng.uniform(3, 7)
        x[(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = rng.uniform(0.5, 1.0)
    probe = gaussian_probe(40.0, 7.5)
    y = simulate_counts(flyscan(x, probe, 4), counts, seed=seed + 100)
    return x, y, probe


def test_gradient_and_divergence_are_minus_adjoint():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 11))
    g = rng.standard_normal((2, 3, 9, 11))
    assert np.vdot(gradient(x), g) == pytest.approx(-np.vdot(x, divergence(g)), rel=1e-12)


def test_tv_beats_bicubic_on_a_noisy_map():
    x, y, probe = _noisy_map(seed=1)
    rng_range = float(x.max() - x.min())
    bic = psnr(match_intensity(bicubic_upsample(y, 4), x), x, data_range=rng_range)
    tv = tv_deconvolution_sr(y, probe, 4, weight=0.01, n_iter=150)
    assert tv.shape == x.shape and tv.dtype == np.float32 and tv.min() >= 0
    tv_psnr = psnr(match_intensity(tv, x), x, data_range=rng_range)
    assert tv_psnr > bic + 1.0, (tv_psnr, bic)


def test_tv_solves_a_batch_of_maps_as_each_map_alone():
    """The evaluation's TV control solves all projections in one call: every map of the
    batch must come out as it does alone (own mean scale, own dual variables)."""
    maps = np.stack([_noisy_map(seed=s, n=32, counts=c)[1] for s, c in ((3, 50.0), (4, 400.0))])
    probe = gaussian_probe(40.0, 7.5)
    batch = tv_deconvolution_sr(maps, probe, 4, weight=0.02, n_iter=40)
    for k in range(len(maps)):
        np.testing.assert_allclose(batch[k], tv_deconvolution_sr(maps[k], probe, 4, 0.02, n_iter=40),
                                   rtol=1e-6, atol=1e-6 * float(batch[k].max()))


def test_tv_with_zero_weight_fits_the_data_and_keeps_the_count_level():
    x, y, probe = _noisy_map(seed=2)
    est = tv_deconvolution_sr(y, probe, 4, weight=0.0, n_iter=150)
    start = bicubic_upsample(y.astype(np.float64), 4)
    misfit = np.linalg.norm(flyscan(est, probe, 4) - y)
    assert misfit < 0.5 * np.linalg.norm(flyscan(start, probe, 4) - y)
    assert est.mean() == pytest.approx(y.mean(), rel=0.05)  # unit-sum operator: counts kept


def test_tune_tv_weight_picks_the_best_of_its_own_sweep_and_a_middle_weight():
    x, y, probe = _noisy_map(seed=3)
    best, table = tune_tv_weight(y, x, probe, 4, weights=[1e-4, 0.01, 1.0], n_iter=100)
    assert best == table.weight[table.psnr_db.idxmax()]
    assert best == 0.01  # too little leaves the noise, too much flattens the particles
    with pytest.raises(ValueError, match="reference must have shape"):
        tune_tv_weight(y, x[:-4], probe, 4, weights=[0.1])


def test_interpolation_baselines():
    x = np.arange(12.0).reshape(3, 4)
    up = nearest_upsample(x, 2)
    assert up.shape == (6, 8) and up.mean() == pytest.approx(x.mean())
    np.testing.assert_array_equal(up[::2, ::2], x)
    vol = np.full((4, 5, 5), 3.0, dtype=np.float32)
    np.testing.assert_allclose(trilinear_upsample(vol, 3), 3.0)
    assert trilinear_upsample(vol, 2).shape == (8, 10, 10)
    with pytest.raises(ValueError, match="scale"):
        nearest_upsample(x, 0)


def test_moved_functions_are_the_same_objects_at_their_old_homes():
    from xrf_sr_kedro.metrics.image import bicubic_upsample as old_bicubic
    from xrf_sr_kedro.physics.deconvolution import richardson_lucy_sr as old_rl

    assert old_bicubic is bicubic_upsample and old_rl is richardson_lucy_sr
