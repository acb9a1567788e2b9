import numpy as np
import pytest

from xrf_sr_kedro.physics.deconvolution import richardson_lucy_sr
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.noise import simulate_counts
from xrf_sr_kedro.physics.probe import gaussian_probe


@pytest.mark.parametrize("mean_counts,background,readout", [(50.0, 0.0, 0.0), (20.0, 5.0, 3.0)])
def test_poisson_counts_have_requested_mean_and_variance(mean_counts, background, readout):
    signal = np.full((400, 500), 0.37)
    counts = simulate_counts(signal, mean_counts, background, readout, seed=1)
    assert counts.dtype == np.float32 and counts.shape == signal.shape
    expected = mean_counts + background
    n = counts.size
    assert counts.mean() == pytest.approx(expected, abs=5 * np.sqrt(expected / n))
    assert counts.var() == pytest.approx(expected + readout**2, rel=0.02)


def test_counts_follow_signal_shape_and_seed():
    rng = np.random.default_rng(0)
    signal = rng.random((200, 200)) * 2.0
    counts = simulate_counts(signal, 100.0, seed=3)
    again = simulate_counts(signal, 100.0, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(counts, again)
    assert counts.mean() == pytest.approx(100.0, rel=0.01)
    # per-pixel expectation is proportional to the signal
    scale = 100.0 / signal.mean()
    resid = (counts - signal * scale) / np.sqrt(signal * scale + 1e-9)
    assert abs(resid.mean()) < 0.05 and resid.std() == pytest.approx(1.0, abs=0.05)
    assert np.all(counts == np.round(counts))


def test_noise_validation():
    with pytest.raises(ValueError, match="non-negative"):
        simulate_counts(np.array([-1.0, 2.0]), 10.0)
    with pytest.raises(ValueError, match="mean_counts"):
        simulate_counts(np.ones(3), 0.0)


def test_richardson_lucy_improves_on_upsampling_and_fits_data():
    probe = gaussian_probe(40.0, 7.5)
    rng = np.random.default_rng(0)
    x = np.full((96, 96), 0.1)
    for _ in range(20):
        cy, cx = rng.integers(12, 84, 2)
        x[cy - 3 : cy + 3, cx - 2 : cx + 2] = 1.0
    y = flyscan(x, probe, 4)
    start = richardson_lucy_sr(y, probe, 4, n_iter=0)
    rl = richardson_lucy_sr(y[None], probe, 4, n_iter=25)[0]
    assert rl.shape == (96, 96) and rl.dtype == np.float32
    assert rl.min() >= 0
    inner = (slice(12, -12), slice(12, -12))
    assert np.abs(rl - x)[inner].mean() < 0.8 * np.abs(start - x)[inner].mean()
    misfit = np.abs(flyscan(rl, probe, 4) - y).mean()
    assert misfit < 0.2 * np.abs(flyscan(start, probe, 4) - y).mean()
