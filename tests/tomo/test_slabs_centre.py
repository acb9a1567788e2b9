"""The streaming (slab) path keeps the rotation centre a stack carries, like tomo.recon."""

from __future__ import annotations

import numpy as np

from xrf_sr_kedro.io.chunked import stack_writer
from xrf_sr_kedro.parallel import ParallelConfig
from xrf_sr_kedro.tomo.centre import center_metadata
from xrf_sr_kedro.tomo.recon import reconstruct
from xrf_sr_kedro.tomo.reproject import reproject
from xrf_sr_kedro.tomo.slabs import reconstruct_slabs, reproject_slabs

SERIAL = ParallelConfig(mode="serial")
OFFSET_PX, PIXEL_NM = 5.0, 50.0


def _off_centre_stack(path, n=40, rows=6, n_angles=24):
    """An off-axis disc projected about an axis OFFSET_PX right of the detector centre."""
    yy, xx = np.mgrid[:n, :n] + 0.5 - n / 2
    vol = np.zeros((rows, n, n), np.float32)
    vol[:, (yy - 4) ** 2 + (xx - 3) ** 2 < 25] = 1.0
    angles = np.arange(n_angles) * 180.0 / n_angles
    proj = reproject(vol, angles, center_offset_px=OFFSET_PX, device="cpu", progress=False)
    md = center_metadata(OFFSET_PX, PIXEL_NM, "test")
    with stack_writer(path, (1, n_angles, rows, n), PIXEL_NM, ["Fe_K"], angles,
                      metadata=md) as w:
        w[0] = proj
    return proj, angles


def test_slab_reconstruction_uses_and_records_the_stack_centre(tmp_path):
    proj, angles = _off_centre_stack(tmp_path / "s.h5")
    # the argument (0) is overridden by the centre the stack carries
    vol = reconstruct_slabs(tmp_path / "s.h5", tmp_path / "v.h5", algorithm="fbp",
                            slab_slices=4, parallel=SERIAL, progress=False)
    ref = reconstruct(proj, angles, algorithm="fbp", center_offset_px=OFFSET_PX, progress=False)
    wrong = reconstruct(proj, angles, algorithm="fbp", progress=False)
    got = vol.read(0, 0, proj.shape[1])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    assert np.abs(got - wrong).max() > 0.1 * np.abs(ref).max()
    assert vol.metadata["center_offset_px"] == OFFSET_PX
    assert vol.metadata["center_offset_nm"] == OFFSET_PX * PIXEL_NM

    # reprojection of that volume: projected with the centre, and carries it on
    st = reproject_slabs(tmp_path / "v.h5", tmp_path / "r.h5", angles, slab_slices=4,
                         parallel=SERIAL, progress=False)
    ref_proj = reproject(got, angles, center_offset_px=OFFSET_PX, device="cpu", progress=False)
    np.testing.assert_allclose(st.read_rows(0, 0, proj.shape[1]), ref_proj, rtol=1e-4,
                               atol=1e-5 * np.abs(ref_proj).max())
    assert st.metadata["center_offset_nm"] == OFFSET_PX * PIXEL_NM
