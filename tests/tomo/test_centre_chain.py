"""The rotation centre through reconstruct -> reproject -> 4x upsample -> reconstruct."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.transform import resize

from xrf_sr_kedro.tomo.recon import reconstruct_stack
from xrf_sr_kedro.tomo.centre import center_metadata, center_offset_px_for
from xrf_sr_kedro.tomo.reproject import reproject, reproject_volume_stack
from xrf_sr_kedro.types import XRFStack

N, OFFSET_PX, SCALE, PIXEL_NM = 48, 6.0, 4, 100.0


def _measured() -> tuple[XRFStack, np.ndarray]:
    yy, xx = np.mgrid[:N, :N] + 0.5 - N / 2
    blob = np.exp(-((yy - 7.0) ** 2 + (xx + 5.0) ** 2) / (2 * 3.0**2)).astype(np.float32)
    truth = np.stack([blob] * 4)
    angles = np.linspace(0, 180, 36, endpoint=False)
    proj = reproject(truth, angles, center_offset_px=OFFSET_PX, device="cpu", progress=False)
    return XRFStack(proj[None] * PIXEL_NM, PIXEL_NM, ("Zn_K",), angles), blob


def _com(img: np.ndarray) -> np.ndarray:
    img = np.where(img > 0.2 * img.max(), img, 0)  # the blob, not FBP streaks
    return np.array(ndimage.center_of_mass(img)) + 0.5 - np.array(img.shape) / 2  # px from centre


def _upsample(stack: XRFStack) -> XRFStack:
    """Bicubic 4x of every projection (stands in for the network)."""
    n_el, n_fr, h, w = stack.data.shape
    fine = resize(stack.data, (n_el, n_fr, h * SCALE, w * SCALE), order=3, mode="edge")
    return XRFStack(fine / SCALE**2, stack.pixel_size_nm / SCALE, stack.elements,
                    stack.angles_deg, stack.units, dict(stack.metadata))


def test_center_offset_scales_with_pixel_size():
    md = center_metadata(5.0, 100.0, "test")
    assert center_offset_px_for(md, 25.0) == pytest.approx(20.0)
    assert center_offset_px_for({}, 25.0, default_offset_px=3.0) == 3.0
    assert center_offset_px_for({"center_offset_px": 2.0, "center_pixel_size_nm": 50.0}, 10.0) == 10.0


def test_raw_and_enhanced_volumes_overlap_off_centre():
    measured, blob = _measured()
    recon = dict(algorithm="fbp", center_offset_px=OFFSET_PX)
    raw = reconstruct_stack(measured, **recon)
    assert raw.metadata["center_offset_px"] == OFFSET_PX
    np.testing.assert_allclose(_com(raw.data[0, 1]), _com(blob), atol=0.25)

    reproj = reproject_volume_stack(raw, np.linspace(0, 180, 72, endpoint=False))
    assert reproj.metadata["center_offset_nm"] == pytest.approx(OFFSET_PX * PIXEL_NM)
    # the reprojections sit where the measured projections did (same detector frame)
    for got, want in zip(reproj.data[0, ::2, 1], measured.data[0, :, 1]):
        assert abs(_com(got[None]) [1] - _com(want[None])[1]) < 0.25
    fine = _upsample(reproj)
    enhanced = reconstruct_stack(fine, **recon)  # same parameters: the offset comes from metadata
    assert enhanced.metadata["center_offset_px"] == pytest.approx(OFFSET_PX * SCALE)
    shift_coarse = _com(enhanced.data[0, 6]) / SCALE - _com(raw.data[0, 1])
    assert np.abs(shift_coarse).max() < 0.25

    # the old behaviour (metadata dropped, offset applied unscaled) misplaces it by > 1 px
    bare = XRFStack(fine.data, fine.pixel_size_nm, fine.elements, fine.angles_deg, fine.units, {})
    wrong = reconstruct_stack(bare, **recon)
    assert np.abs(_com(wrong.data[0, 6]) / SCALE - _com(raw.data[0, 1])).max() > 1.0
