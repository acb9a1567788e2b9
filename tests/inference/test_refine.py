"""Poisson refinement through the fly-scan operator (issue 13, item 4)."""

import numpy as np

from xrf_sr_kedro.inference.refine import poisson_nll, refine_poisson
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.microstructures import microstructure_sample
from xrf_sr_kedro.physics.probe import gaussian_probe


def _case(seed=0):
    probe = gaussian_probe(20.0, 7.5).intensity
    truth = microstructure_sample(64, n_elements=1, seed=11)[0] + 0.05
    g, b = 200.0 / float(flyscan(truth, probe, 4).mean()), 2.0
    rng = np.random.default_rng(seed)
    counts = rng.poisson(g * flyscan(truth, probe, 4) + b).astype(np.float64)
    # a "network output": blurred, biased estimate
    from scipy import ndimage
    x0 = ndimage.gaussian_filter(truth, 2.0) * 0.9 + 0.02
    return probe, truth, g, b, counts, x0


def test_nll_decreases_output_nonnegative_and_total_kept():
    probe, truth, g, b, counts, x0 = _case()
    nll0 = poisson_nll(x0, counts, probe, 4, g, b)
    for w in (0.0, 0.1, 1.0):
        x = refine_poisson(x0, counts, probe, 4, g, b, anchor_weight=w, n_iter=8)
        assert x.min() >= 0
        np.testing.assert_allclose(x.sum(), x0.sum(), rtol=1e-5)
        assert poisson_nll(x, counts, probe, 4, g, b) < nll0 - 1.0
    # weaker anchor -> better fit of the counts
    nll_w = [poisson_nll(refine_poisson(x0, counts, probe, 4, g, b, anchor_weight=w, n_iter=8),
                         counts, probe, 4, g, b) for w in (0.0, 10.0)]
    assert nll_w[0] < nll_w[1]


def test_infinite_anchor_returns_network_output():
    probe, truth, g, b, counts, x0 = _case()
    x = refine_poisson(x0, counts, probe, 4, g, b, anchor_weight=np.inf, n_iter=8)
    np.testing.assert_array_equal(x, x0.astype(np.float32))
    # a very strong finite anchor stays close to it too
    x = refine_poisson(x0, counts, probe, 4, g, b, anchor_weight=1e6, n_iter=8)
    assert np.abs(x - x0).max() < 1e-3 * x0.max()


def test_refine_maps_works_on_the_counts_scale_of_a_stack():
    from xrf_sr_kedro.inference.refine import refine_maps

    probe, truth, g, b, counts, x0 = _case()
    sr_counts = g * x0 + b  # what the engine returns: counts scale, background included
    stack = np.stack([sr_counts, sr_counts])[None]  # (1, 2, H, W)
    meas = np.stack([counts, counts])[None].astype(np.float32)
    out = refine_maps(stack, meas, probe, 4, b, anchor_weight=0.1, n_iter=6)
    assert out.shape == stack.shape
    np.testing.assert_allclose(out[0, 0], out[0, 1])
    nll_before = poisson_nll(sr_counts - b, counts, probe, 4, 1.0, b)
    nll_after = poisson_nll(out[0, 0] - b, counts, probe, 4, 1.0, b)
    assert nll_after < nll_before - 1.0
    np.testing.assert_array_equal(
        refine_maps(stack, meas, probe, 4, b, anchor_weight=np.inf), stack.astype(np.float32))


def test_refine_stack_keeps_metadata_and_matches_refine_maps():
    from xrf_sr_kedro.inference.refine import refine_maps, refine_stack
    from xrf_sr_kedro.types import ProbeIntensity, XRFStack

    probe, truth, g, b, counts, x0 = _case()
    enh = XRFStack(data=(g * x0 + b)[None, None], pixel_size_nm=7.5, elements=("Zn_K",))
    raw = XRFStack(data=counts[None, None].astype(np.float32), pixel_size_nm=30.0,
                   elements=("Zn_K",), metadata={"background_counts": b})
    out = refine_stack(enh, raw, ProbeIntensity(probe, 7.5), anchor_weight=1.0, n_iter=4)
    ref = refine_maps(enh.data, raw.data, probe, 4, b, 1.0, 4)
    np.testing.assert_allclose(out.data, ref, rtol=1e-6)
    assert out.metadata["refinement"]["anchor_weight"] == 1.0 and out.pixel_size_nm == 7.5


def test_refinement_settings_switch_between_pass_through_and_refine_stack():
    import pytest

    from xrf_sr_kedro.inference.refine import RefinementSettings, refine_if_enabled, refine_stack
    from xrf_sr_kedro.types import ProbeIntensity, XRFStack

    probe, truth, g, b, counts, x0 = _case()
    enh = XRFStack(data=(g * x0 + b)[None, None], pixel_size_nm=7.5, elements=("Zn_K",),
                   metadata={"enhancement": {"model": "x"}})
    raw = XRFStack(data=counts[None, None].astype(np.float32), pixel_size_nm=30.0,
                   elements=("Zn_K",), metadata={"background_counts": b})
    p = ProbeIntensity(probe, 7.5)
    off = refine_if_enabled(enh, raw, p, RefinementSettings())
    np.testing.assert_array_equal(off.data, enh.data)
    assert off.metadata["refinement"] == {"enabled": False} and off.metadata["enhancement"] == {"model": "x"}
    on = refine_if_enabled(enh, raw, p, RefinementSettings(enabled=True, anchor_weight=1.0, n_iter=4))
    np.testing.assert_allclose(on.data, refine_stack(enh, raw, p, 1.0, 4).data, rtol=1e-6)
    assert not np.allclose(on.data, enh.data)
    with pytest.raises(ValueError, match="anchor_weight"):
        RefinementSettings(anchor_weight=0.0)
