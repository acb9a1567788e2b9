"""PyXRF reader on files written in the assumed PyXRF layout (io/pyxrf.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from xrf_sr_kedro.io.hdf5 import DataFormatError
from xrf_sr_kedro.io.pyxrf import read_pyxrf, read_pyxrf_series, write_pyxrf_like

RNG = np.random.default_rng(1)


def _maps(h=6, w=7):
    return {"Zn_K": RNG.random((h, w)) * 50, "Mn_K": RNG.random((h, w)) * 5,
            "Fe_K": RNG.random((h, w))}


def test_element_selection_order_and_pixel_size_from_positions(tmp_path):
    maps = _maps()
    write_pyxrf_like(tmp_path / "scan.h5", maps, step_um=0.1, theta_mdeg=-45000.0)
    s = read_pyxrf(tmp_path / "scan.h5", ["Mn_K", "Zn_K"])
    assert s.elements == ("Mn_K", "Zn_K")
    assert s.data.shape == (2, 1, 6, 7)
    np.testing.assert_allclose(s.data[0, 0], maps["Mn_K"], rtol=1e-6)
    np.testing.assert_allclose(s.data[1, 0], maps["Zn_K"], rtol=1e-6)
    assert s.pixel_size_nm == pytest.approx(100.0)
    np.testing.assert_allclose(s.angles_deg, [-45.0])
    assert s.units == "fitted counts"
    assert s.metadata["scan_metadata"]["scan_id"] == 12345


def test_given_pixel_size_wins_and_no_angle(tmp_path):
    write_pyxrf_like(tmp_path / "scan.h5", _maps(), step_um=0.1)
    s = read_pyxrf(tmp_path / "scan.h5", ["Fe_K"], pixel_size_nm=80.0)
    assert s.pixel_size_nm == 80.0 and s.angles_deg is None


def test_missing_element_lists_available(tmp_path):
    write_pyxrf_like(tmp_path / "scan.h5", _maps())
    with pytest.raises(DataFormatError, match=r"\['Cu_K'\] not found; available: \['Zn_K', 'Mn_K', 'Fe_K', 'compton', 'elastic'\]"):
        read_pyxrf(tmp_path / "scan.h5", ["Zn_K", "Cu_K"])


def test_missing_pixel_size(tmp_path):
    write_pyxrf_like(tmp_path / "scan.h5", _maps())
    with h5py.File(tmp_path / "scan.h5", "r+") as f:
        del f["xrfmap/positions"]
    with pytest.raises(DataFormatError, match=r"key xrfmap/positions/pos: pixel size missing.*pass pixel_size_nm"):
        read_pyxrf(tmp_path / "scan.h5", ["Zn_K"])


def test_missing_key_and_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.h5: file not found"):
        read_pyxrf(tmp_path / "none.h5", ["Zn_K"])
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_group("xrfmap")
    with pytest.raises(DataFormatError, match=r"empty.h5, key xrfmap/detsum/xrf_fit: missing"):
        read_pyxrf(tmp_path / "empty.h5", ["Zn_K"])


def test_nan_refused_negative_fit_values_clipped(tmp_path, caplog):
    maps = _maps()
    maps["Zn_K"][0, 0] = -1.0
    write_pyxrf_like(tmp_path / "neg.h5", maps)
    with caplog.at_level("WARNING"):
        s = read_pyxrf(tmp_path / "neg.h5", ["Zn_K"])
    assert s.data.min() == 0.0 and "clipped 1 negative" in caplog.text
    maps["Zn_K"][0, 0] = np.nan
    write_pyxrf_like(tmp_path / "nan.h5", maps)
    with pytest.raises(DataFormatError, match="NaN/inf"):
        read_pyxrf(tmp_path / "nan.h5", ["Zn_K"])


def test_wrong_dimensionality(tmp_path):
    write_pyxrf_like(tmp_path / "scan.h5", _maps())
    with h5py.File(tmp_path / "scan.h5", "r+") as f:
        del f["xrfmap/detsum/xrf_fit"]
        f["xrfmap/detsum/xrf_fit"] = np.zeros((5, 6, 7, 2))
    with pytest.raises(DataFormatError, match=r"expected 3-D \(n_lines, H, W\)"):
        read_pyxrf(tmp_path / "scan.h5", ["Zn_K"])


def test_series_sorted_by_angle(tmp_path):
    thetas_mdeg = [30000.0, -60000.0, 0.0]
    paths, firsts = [], {}
    for i, t in enumerate(thetas_mdeg):
        maps = _maps()
        firsts[t / 1000] = maps["Zn_K"]
        paths.append(tmp_path / f"scan_{i}.h5")
        write_pyxrf_like(paths[-1], maps, step_um=0.05, theta_mdeg=t)
    s = read_pyxrf_series(paths, ["Zn_K"])
    np.testing.assert_allclose(s.angles_deg, [-60, 0, 30])
    for k, a in enumerate(s.angles_deg):
        np.testing.assert_allclose(s.data[0, k], firsts[a], rtol=1e-6)
    assert s.pixel_size_nm == pytest.approx(50.0)

    write_pyxrf_like(tmp_path / "no_theta.h5", _maps())
    with pytest.raises(DataFormatError, match="param_theta.*missing"):
        read_pyxrf_series([paths[0], tmp_path / "no_theta.h5"], ["Zn_K"])
