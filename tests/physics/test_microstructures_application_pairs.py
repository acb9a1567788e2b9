"""Microstructure generators and application-scale training pairs (issue 13)."""

import numpy as np
import pytest

from xrf_sr_kedro.normalisation import minmax_range, normalise
from xrf_sr_kedro.physics.application_pairs import (
    concat_pairs,
    lowpass_noise,
    make_application_pairs,
)
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.microstructures import (
    check_training_source,
    microstructure_maps,
    microstructure_sample,
)
from xrf_sr_kedro.physics.phantom import battery_phantom
from xrf_sr_kedro.physics.probe import gaussian_probe


def test_samples_are_seeded_nonnegative_and_distinct():
    a = microstructure_sample(64, n_elements=3, seed=5)
    b = microstructure_sample(64, n_elements=3, seed=5)
    c = microstructure_sample(64, n_elements=3, seed=6)
    assert a.shape == (3, 64, 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    # every map has structure (not constant) in a typical sample set
    maps = microstructure_maps(6, 64, seed=1)
    assert sum(float(m.std()) > 1e-3 for m in maps) >= len(maps) - 1


def test_validation_seed_shares_no_sample_with_training():
    train = microstructure_maps(4, 32, seed=1)
    val = microstructure_maps(4, 32, seed=2)
    for t in train:
        assert all(not np.array_equal(t, v) for v in val)


def test_guard_refuses_phantom_and_held_out_seeds():
    with pytest.raises(ValueError, match="phantom"):
        check_training_source(battery_phantom, [1])
    with pytest.raises(ValueError, match="reserved"):
        microstructure_maps(2, 32, seed=7, forbidden_seeds=[7, 8])
    check_training_source(microstructure_sample, [1], forbidden_seeds=[7])


def test_lowpass_noise_gain_at_dc_and_nyquist():
    h = w = 32
    yy, xx = np.mgrid[0:h, 0:w]
    nyq = np.cos(np.pi * xx).astype(np.float32)  # 0.5 cycles/px along x
    np.testing.assert_allclose(lowpass_noise(nyq, 0.125), 0.125 * nyq, atol=1e-5)
    const = np.ones((h, w), np.float32)
    np.testing.assert_allclose(lowpass_noise(const, 0.125), const, atol=1e-5)


def test_pairs_are_normalised_like_inference_and_noise_free_pairs_are_exact():
    probe = gaussian_probe(20.0, 7.5)
    maps = microstructure_maps(3, 64, seed=3)
    pairs = make_application_pairs(maps, probe, 4, counts_range=(1e9, 1e9),
                                   background_counts=0.0, readout_sigma_counts=0.0)
    assert pairs.lr.shape == (len(maps), 1, 16, 16) and pairs.scale == 4
    for k, m in enumerate(maps):
        clean = flyscan(m, probe.intensity, 4)
        lo, hi = minmax_range(clean)
        # the LR patch is the LR map normalised with its own min/max (as the engine does)
        np.testing.assert_allclose(pairs.lr[k, 0], normalise(clean, lo, hi), atol=2e-3)
        g = 1e9 / float(clean.mean())  # counts per unit; no background here
        np.testing.assert_allclose(pairs.hr[k, 0], normalise(m, lo, hi), atol=1e-4)
        np.testing.assert_allclose(pairs.hr[k, 0], normalise(g * m, g * lo, g * hi), atol=1e-4)
        assert pairs.lr[k].min() == 0 and pairs.lr[k].max() == 1


def test_doses_span_the_range_and_low_dose_is_noisier():
    probe = gaussian_probe(20.0, 7.5)
    maps = microstructure_maps(12, 64, seed=4)
    pairs = make_application_pairs(maps, probe, 4, counts_range=(20, 2000), seed=1)
    d = np.array(pairs.metadata["mean_counts"])
    assert d.min() >= 20 and d.max() <= 2000 and d.max() / d.min() > 5
    one = [maps[0]] * 2
    lo = make_application_pairs(one, probe, 4, counts_range=(10, 10), seed=2)
    hi = make_application_pairs(one, probe, 4, counts_range=(5000, 5000), seed=2)
    clean = flyscan(maps[0], probe.intensity, 4)
    ref = normalise(clean, *minmax_range(clean))
    assert np.abs(lo.lr[0, 0] - ref).mean() > 2 * np.abs(hi.lr[0, 0] - ref).mean()
    mix = concat_pairs([lo, hi])
    assert len(mix) == 4


def test_reprojection_noise_is_weaker_at_high_frequency():
    probe = gaussian_probe(20.0, 7.5)
    m = [np.full((128, 128), 0.5, np.float32)] * 8
    plain = make_application_pairs(m, probe, 4, (50, 50), 0.0, 0.0, 0.0, seed=3)
    rp = make_application_pairs(m, probe, 4, (50, 50), 0.0, 0.0, 1.0, 0.125, seed=3)
    assert all(rp.metadata["reprojection_noise"])

    def hf_over_lf(p):  # noise power at high vs low spatial frequency (interior only)
        x = p.lr[:, 0, 4:-4, 4:-4]
        x = x - x.mean(axis=(1, 2), keepdims=True)
        pw = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0)
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(x.shape[1]), np.fft.fftfreq(x.shape[2]), indexing="ij"))
        return pw[f > 0.35].mean() / pw[(f > 0) & (f < 0.15)].mean()

    assert hf_over_lf(rp) < 0.2 * hf_over_lf(plain)


def test_projected_samples_and_fraction_switch():
    from xrf_sr_kedro.physics.microstructures import projected_sample

    p = projected_sample(64, n_elements=2, seed=3)
    assert p.shape == (2, 64, 64) and p.min() >= 0 and np.isclose(p.max(), 1)
    flat = microstructure_maps(4, 32, seed=9)
    np.testing.assert_array_equal(flat[0], microstructure_maps(4, 32, seed=9, projected_fraction=0.0)[0])
    thick = microstructure_maps(4, 32, seed=9, projected_fraction=1.0)
    assert len(thick) >= 4 and not np.array_equal(thick[0], flat[0])


def test_training_mix_fraction_and_validation_region():
    from xrf_sr_kedro.physics.application_pairs import training_pairs, validation_region_pairs
    from xrf_sr_kedro.physics.pairs import make_patch_pairs

    probe = gaussian_probe(20.0, 7.5)
    rng = np.random.default_rng(0)
    nat = make_patch_pairs([rng.random((128, 128))], probe, 4, 16, 20, 200.0)
    mix = training_pairs(probe, nat, 0.5, n_samples=5, size_px=64, seed=1, validation_seed=2)
    n_mic = len(training_pairs(probe, None, 0.0, n_samples=5, size_px=64, seed=1))
    assert len(mix) == 2 * n_mic
    with pytest.raises(ValueError, match="reserved"):
        training_pairs(probe, None, 0.0, n_samples=2, size_px=64, seed=2, validation_seed=2)
    val = validation_region_pairs(probe, 3, 64, seed=2, mean_counts=150.0)
    np.testing.assert_allclose(val.metadata["mean_counts"], 150.0)
