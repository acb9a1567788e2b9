"""Iterative reprojection alignment on clean projections with known shifts."""

import numpy as np
import pytest
from scipy import ndimage

from xrf_sr_kedro.tomo.align import align_projections, apply_shifts, rigid_components
from xrf_sr_kedro.tomo.reproject import reproject
from xrf_sr_kedro.types import XRFStack


@pytest.fixture(scope="module")
def shifted():
    n, rows = 48, 12
    yy, xx = np.mgrid[:n, :n] + 0.5 - n / 2
    vol = np.zeros((rows, n, n), np.float32)
    discs = [(-8, 5, 5, 3, 8), (9, -6, 4, 4, 9), (2, 11, 3, 3, 6), (-3, -12, 4, 5, 9)]
    for cy, cx, r, z0, z1 in discs:
        vol[z0:z1][:, (yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1.0
    angles = np.arange(30) * 6.0
    proj = reproject(vol, angles, center_offset_px=3.0, device="cpu", progress=False)
    rng = np.random.default_rng(0)
    true = rng.normal(0, 1.5, (30, 2))
    true[:, 0] -= true[:, 0].mean()
    true[:, 1] -= rigid_components(true[:, 1], angles)
    moved = np.clip(np.stack([ndimage.shift(p, s, order=3) for p, s in zip(proj, true)]), 0, None)
    return moved, angles, true


def test_recovers_shifts_to_a_tenth_of_a_pixel(shifted):
    moved, angles, true = shifted
    result = align_projections(moved, angles, center_offset_px=3.0, n_iter=10)
    rms = np.sqrt(((result.shifts_px + true) ** 2).sum(axis=1).mean())
    assert rms < 0.1 < np.sqrt((true**2).sum(axis=1).mean())
    # the invisible components stay out of the answer
    assert abs(result.shifts_px[:, 0].mean()) < 1e-9
    np.testing.assert_allclose(rigid_components(result.shifts_px[:, 1], angles), 0, atol=1e-9)
    assert result.max_update_px[-1] < result.max_update_px[0]
    assert result.sinogram_before.shape == result.sinogram_after.shape == (30, 48)


def test_apply_shifts_to_every_element_and_back(shifted):
    moved, angles, true = shifted
    stack = XRFStack(np.stack([moved, 2 * moved]), 100.0, ("Fe_K", "Mn_K"), angles)
    out = apply_shifts(stack, -true, "Fe_K")
    back = apply_shifts(out, true, "Fe_K")
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(out.data[1], 2 * out.data[0], rtol=1e-5, atol=1e-5)
    # two cubic interpolations of sharp-edged projections: close on average, counts kept
    assert np.abs(back.data[inner] - stack.data[inner]).mean() < 0.02 * moved.max()
    assert back.data.sum() == pytest.approx(stack.data.sum(), rel=0.01)
    assert out.metadata["alignment"]["reference_element"] == "Fe_K"
    with pytest.raises(ValueError, match=r"shifts_px must have shape \(30, 2\)"):
        apply_shifts(stack, true[:5], "Fe_K")
