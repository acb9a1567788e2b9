"""MAPS-style HDF5 reader: elements checked first, I0 normalisation, angles, pixel sizes."""

import logging

import numpy as np
import pytest

from xrf_sr_kedro.io.hdf5 import DataFormatError
from xrf_sr_kedro.io.maps import read_maps_h5, write_maps_like


def _write_series(tmp_path, n_angles=3, i0=True):
    rng = np.random.default_rng(0)
    truth = rng.uniform(1, 10, size=(2, n_angles, 4, 5))
    flux = rng.uniform(0.5, 2.0, size=(n_angles, 4, 5))
    angles = [40.0, -20.0, 10.0][:n_angles]
    for k in range(n_angles):
        write_maps_like(
            tmp_path / f"scan_{k}.h5",
            np.stack([truth[0, k] * flux[k], truth[1, k] * flux[k], np.ones((4, 5))]),
            ["Zn", "Fe", "W_L"],
            scalers=np.stack([flux[k] * 1e5, np.full((4, 5), 100.0)]) if i0 else None,
            scaler_names=["US_IC", "SRcurrent"] if i0 else (),
            pixel_size_nm=(200.0, 100.0),
            theta_deg=angles[k],
        )
    return truth, flux, angles


def test_maps_i0_normalised_sorted_and_anisotropic(tmp_path):
    truth, flux, angles = _write_series(tmp_path)
    stack = read_maps_h5(
        tmp_path / "scan_*.h5", ["Fe_K", "Zn_K"], i0_scaler="US_IC", theta_pv="2xfm:m58.VAL"
    )
    order = np.argsort(angles)
    np.testing.assert_allclose(stack.angles_deg, np.sort(angles))
    # normalised by I0 / mean(I0): the flux pattern is gone, the counts scale kept
    expected = truth[[1, 0]][:, order] * flux.mean()
    np.testing.assert_allclose(stack.data, expected, rtol=1e-5)
    assert stack.metadata["i0_normalised"] is True
    assert stack.metadata["pixel_size_y_nm"] == pytest.approx(200.0)
    assert stack.metadata["pixel_size_x_nm"] == pytest.approx(100.0)
    assert stack.pixel_size_nm == pytest.approx(100.0)
    assert stack.elements == ("Fe_K", "Zn_K")


def test_maps_missing_element_lists_present(tmp_path):
    _write_series(tmp_path, 1)
    with pytest.raises(DataFormatError, match=r"\['Cu_K'\] not found; present in the file: \['Zn_K', 'Fe_K', 'W_L'\]"):
        read_maps_h5(tmp_path / "scan_0.h5", ["Zn_K", "Cu_K"])


def test_maps_missing_i0_scaler_is_an_error_and_none_warns(tmp_path, caplog):
    _write_series(tmp_path, 1)
    with pytest.raises(DataFormatError, match=r"I0 scaler 'DS_IC' not found; scalers present: \['US_IC', 'SRcurrent'\]"):
        read_maps_h5(tmp_path / "scan_0.h5", ["Zn_K"], i0_scaler="DS_IC")
    with caplog.at_level(logging.WARNING):
        stack = read_maps_h5(tmp_path / "scan_0.h5", ["Zn_K"])
    assert "NOT normalised by the incident flux" in caplog.text
    assert stack.metadata["i0_normalised"] is False


def test_maps_no_scalers_in_file(tmp_path):
    _write_series(tmp_path, 1, i0=False)
    with pytest.raises(DataFormatError, match="scalers present: none"):
        read_maps_h5(tmp_path / "scan_0.h5", ["Zn_K"], i0_scaler="US_IC")


def test_maps_angles_from_list_when_files_have_none(tmp_path):
    rng = np.random.default_rng(1)
    for k in range(2):
        write_maps_like(tmp_path / f"a{k}.h5", rng.uniform(0, 1, (1, 3, 3)), ["Zn"])
    with pytest.raises(DataFormatError, match="no rotation angle recorded"):
        read_maps_h5([tmp_path / "a0.h5", tmp_path / "a1.h5"], ["Zn_K"])
    stack = read_maps_h5([tmp_path / "a0.h5", tmp_path / "a1.h5"], ["Zn_K"], angles_deg=[5, -5])
    np.testing.assert_allclose(stack.angles_deg, [-5, 5])
