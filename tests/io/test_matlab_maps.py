"""MATLAB .mat maps: v5 (scipy) and v7.3 (HDF5, transposed) give the same stack."""

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from xrf_sr_kedro.io.hdf5 import DataFormatError
from xrf_sr_kedro.io.matlab import read_mat_maps


def _write_v73(path, variables):
    """A minimal MATLAB v7.3 file: HDF5, arrays stored transposed, char as uint16."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            if isinstance(value, list):  # cell array of strings
                refs = []
                for k, text in enumerate(value):
                    d = f.create_dataset(f"#refs#/{name}{k}", data=np.array([[ord(c)] for c in text], dtype=np.uint16))
                    d.attrs["MATLAB_class"] = np.bytes_("char")
                    refs.append(d.ref)
                ds = f.create_dataset(name, data=np.array(refs, dtype=h5py.ref_dtype)[:, None].T)
                ds.attrs["MATLAB_class"] = np.bytes_("cell")
            else:
                ds = f.create_dataset(name, data=np.asarray(value).T)
                ds.attrs["MATLAB_class"] = np.bytes_("double")


@pytest.fixture
def content():
    rng = np.random.default_rng(0)
    maps = rng.uniform(1, 5, (3, 2, 4, 6))  # element, angle, y, x
    i0 = rng.uniform(0.5, 1.5, (2, 4, 6))
    return {
        "maps": maps * i0[None],
        "elements": ["Ca_K", "Zn_K", "W_L"],
        "theta_deg": np.array([15.0, -15.0]),
        "I0": i0,
        "pixel_size_nm": np.array([120.0, 60.0]),
    }, maps, i0


def test_v5_and_v73_read_identically_with_i0(tmp_path, content):
    variables, maps, i0 = content
    savemat(tmp_path / "v5.mat", {**variables, "elements": np.array(variables["elements"], dtype=object)})
    _write_v73(tmp_path / "v73.mat", variables)
    a = read_mat_maps(tmp_path / "v5.mat", ["W_L", "Zn_K"], i0_key="I0")
    b = read_mat_maps(tmp_path / "v73.mat", ["W_L", "Zn_K"], i0_key="I0")
    expected = maps[[2, 1]][:, ::-1] * i0.mean()  # sorted by angle, normalised to mean I0
    np.testing.assert_allclose(a.data, expected, rtol=1e-5)
    np.testing.assert_allclose(b.data, expected, rtol=1e-5)
    np.testing.assert_allclose(b.angles_deg, [-15, 15])
    assert a.metadata["format"] == "MATLAB v5" and b.metadata["format"] == "MATLAB v7.3"
    assert b.metadata["pixel_size_y_nm"] == 120.0 and b.pixel_size_nm == 60.0


def test_mat_missing_element_and_missing_i0(tmp_path, content):
    variables, _, _ = content
    savemat(tmp_path / "v5.mat", {**variables, "elements": np.array(variables["elements"], dtype=object)})
    _write_v73(tmp_path / "v73.mat", variables)
    for name in ("v5.mat", "v73.mat"):
        with pytest.raises(DataFormatError, match=r"\['Fe_K'\] not found; present in the file: \['Ca_K', 'Zn_K', 'W_L'\]"):
            read_mat_maps(tmp_path / name, ["Fe_K"])
        with pytest.raises(DataFormatError, match="variables present"):
            read_mat_maps(tmp_path / name, ["Zn_K"], i0_key="US_IC")
