"""Probes as ptychography codes write them: .npz, PtychoShelves .mat, PtyPy .ptyr."""

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from xrf_sr_kedro.io.hdf5 import DataFormatError
from xrf_sr_kedro.io.probe import read_probe


@pytest.fixture
def modes():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((2, 8, 6)) + 1j * rng.standard_normal((2, 8, 6))).astype(np.complex64)


def test_npz_real_imag_complex_and_pixel_size(tmp_path, modes):
    np.savez(tmp_path / "a.npz", probe_real=modes.real, probe_imag=modes.imag, pixel_size_nm=8.9)
    np.savez(tmp_path / "b.npz", probe=modes, pixel_size_m=np.array([7e-9, 7e-9]))
    np.savez(tmp_path / "c.npz", whatever=modes)
    a, pa = read_probe(tmp_path / "a.npz")
    b, pb = read_probe(tmp_path / "b.npz")
    c, pc = read_probe(tmp_path / "c.npz", pixel_size_nm=5.0)
    np.testing.assert_array_equal(a, modes)
    np.testing.assert_array_equal(b, modes)
    np.testing.assert_array_equal(c, modes)
    assert (pa, pb, pc) == (pytest.approx(8.9), pytest.approx(7.0), 5.0)
    with pytest.raises(DataFormatError, match="pixel_size_nm"):
        read_probe(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", probe_real=modes.real)
    with pytest.raises(DataFormatError, match="come together"):
        read_probe(tmp_path / "d.npz", pixel_size_nm=5.0)


def test_ptychoshelves_mat_v5_and_v73(tmp_path, modes):
    matlab_order = np.moveaxis(modes, 0, -1)  # (h, w, k)
    savemat(tmp_path / "ps.mat", {"probe": matlab_order, "p": {"dx_spec": np.array([10e-9, 10e-9])}})
    got, px = read_probe(tmp_path / "ps.mat")
    np.testing.assert_allclose(got, modes, rtol=1e-6)
    assert px == pytest.approx(10.0)
    # v7.3: HDF5, transposed, complex as a compound of real/imag
    with h5py.File(tmp_path / "ps73.mat", "w", userblock_size=512) as f:
        cplx = np.zeros(matlab_order.T.shape, dtype=[("real", "<f4"), ("imag", "<f4")])
        cplx["real"], cplx["imag"] = matlab_order.T.real, matlab_order.T.imag
        f["probe"] = cplx
        f["p/dx_spec"] = np.array([[12e-9, 12e-9]]).T
    got, px = read_probe(tmp_path / "ps73.mat")
    np.testing.assert_allclose(got, modes, rtol=1e-6)
    assert px == pytest.approx(12.0)


def test_ptypy_ptyr(tmp_path, modes):
    with h5py.File(tmp_path / "run.ptyr", "w") as f:
        f["content/probe/S00G00/data"] = modes
        f["content/probe/S00G00/_psize"] = np.array([6.5e-9, 6.5e-9])
    got, px = read_probe(tmp_path / "run.ptyr")
    np.testing.assert_array_equal(got, modes)
    assert px == pytest.approx(6.5)
    with h5py.File(tmp_path / "bad.ptyr", "w") as f:
        f["content/obj/S00G00/data"] = modes
    with pytest.raises(DataFormatError, match="content/probe"):
        read_probe(tmp_path / "bad.ptyr")


def test_unknown_suffix_lists_the_accepted_ones(tmp_path):
    (tmp_path / "p.tif").write_bytes(b"x")
    with pytest.raises(DataFormatError, match=r"expected .npy, .npz, .h5, .mat or .ptyr"):
        read_probe(tmp_path / "p.tif")
