
import h5py
import numpy as np
import pytest

from xrf_sr_kedro.io.dxchange import read_transmission, transmission_to_sinogram
from xrf_sr_kedro.tomo import reconstruct, reproject

TOOTH_CENTER_PX = 296.0  # TomoPy rotation centre of the full-width data


def test_transmission_to_sinogram_clips_and_logs():
    data = np.array([[[50.0, 10.0, 0.0]]], dtype=np.float32)
    white = np.full((2, 1, 3), 110.0, dtype=np.float32)
    dark = np.full((3, 1, 3), 10.0, dtype=np.float32)
    s = transmission_to_sinogram(data, white, dark)
    np.testing.assert_allclose(s[0, 0, 0], -np.log(0.4), rtol=1e-6)
    assert np.isfinite(s).all() and s[0, 0, 1] > 10  # zero transmission is clipped


def test_missing_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["exchange/data"] = np.zeros((3, 2, 4), dtype=np.float32)
        f["exchange/data_white"] = np.ones((1, 2, 4), dtype=np.float32)
        f["exchange/theta"] = np.array([0.0, 60.0, 120.0])
    with pytest.raises(KeyError, match=r"bad\.h5.*exchange/data_dark"):
        read_transmission(path)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_transmission(tmp_path / "nope.h5")


def test_tooth_slice_iterative_matches_fbp_and_centre(shared_data):
    d = read_transmission(shared_data / "tomopy_tooth" / "tooth.h5")
    assert d.data.shape == (181, 2, 640) and d.theta_deg.shape == (181,)
    assert 178 < d.theta_deg.max() < 180
    sino = transmission_to_sinogram(d.data, d.white, d.dark)[:, :1]
    # Bin the detector by 8 to keep the test fast; the centre scales with it.
    binned = sino.reshape(181, 1, 80, 8).mean(-1)
    offset = (TOOTH_CENTER_PX - 640 / 2) / 8  # TomoPy centre -> offset from detector centre
    rec_fbp = reconstruct(binned, d.theta_deg, "fbp", center_offset_px=offset, device="cpu",
                          progress=False)
    rec_ml = reconstruct(binned, d.theta_deg, "ospml_quad", n_iter=6, n_subsets=10,
                         reg_par=0.01, center_offset_px=offset, clip_negative=True,
                         device="cpu", progress=False)
    a, b = rec_fbp[0].ravel(), rec_ml[0].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.9
    # Scale agrees (same physical units) after least-squares matching to within 10 %.
    assert 0.9 < float(a @ b / (b @ b)) < 1.1
    # The documented centre fits the data better than the mirrored one.
    def misfit(off):
        rec = reconstruct(binned, d.theta_deg, "fbp", center_offset_px=off, device="cpu",
                          progress=False)
        again = reproject(rec, d.theta_deg, center_offset_px=off, device="cpu", progress=False)
        return float(np.linalg.norm(again - binned))
    assert misfit(offset) < 0.6 * misfit(-offset)
    assert misfit(offset) < 0.6 * misfit(0.0)
