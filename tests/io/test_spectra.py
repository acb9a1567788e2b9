"""Per-pixel spectra: xraylib line energies, window and least-squares maps, files."""

import numpy as np
import pytest
import h5py

from xrf_sr_kedro.io.hdf5 import DataFormatError
from xrf_sr_kedro.io.lines import emission_line
from xrf_sr_kedro.io.spectra import (
    EnergyCalibration,
    element_maps_from_spectra,
    line_shapes,
    read_spectra,
)

CAL = EnergyCalibration(offset_kev=0.5, slope_kev=0.02)  # 0.5-10.7 keV over 512 channels
N_CH = 512


def test_line_energies_from_xraylib():
    assert emission_line("Zn_K").energy_kev == pytest.approx(8.63, abs=0.01)  # K-alpha
    assert emission_line("Fe_K").energy_kev == pytest.approx(6.40, abs=0.01)
    assert emission_line("W_L").energy_kev == pytest.approx(8.40, abs=0.01)  # L-alpha1
    assert sum(w for _, w in emission_line("Zn_K").components) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown element symbol 'Xx'"):
        emission_line("Xx_K")
    with pytest.raises(ValueError, match="expected '<symbol>_<K|L|M>'"):
        emission_line("Zn")


def _spectra(amplitudes, background=2.0, seed=0):
    """Poisson spectra (H, W, n_ch) of Mn_K + Fe_K (Mn K-beta overlaps Fe K-alpha)."""
    e = CAL.energies_kev(N_CH)
    shapes = line_shapes(["Mn_K", "Fe_K"], e, 150.0)
    mean = np.einsum("ehw,ec->hwc", amplitudes, shapes) + background
    return np.random.default_rng(seed).poisson(mean).astype(np.float64)


def test_fit_separates_overlapping_lines_window_leaks():
    rng = np.random.default_rng(3)
    amps = np.stack([rng.uniform(2000, 4000, (6, 6)), np.zeros((6, 6))])  # Mn only, no Fe
    s = _spectra(amps)
    fit = element_maps_from_spectra(s, CAL, ["Mn_K", "Fe_K"], method="fit")
    win = element_maps_from_spectra(s, CAL, ["Mn_K", "Fe_K"], method="window")
    assert fit.shape == (2, 6, 6)
    np.testing.assert_allclose(fit[0], amps[0], rtol=0.12)  # Poisson: ~3 % per pixel
    assert fit[0].mean() == pytest.approx(amps[0].mean(), rel=0.02)  # whole family counted
    assert np.abs(fit[1]).mean() < 0.02 * amps[0].mean()  # no Fe invented
    assert win[1].mean() > 0.05 * amps[0].mean()  # the window sees Mn K-beta as Fe


def test_line_outside_calibration_is_refused():
    with pytest.raises(ValueError, match="outside the calibrated range"):
        element_maps_from_spectra(np.zeros((2, 2, 100)), CAL, ["W_K"])


def test_spectra_files_h5_npz_npy_and_i0(tmp_path):
    rng = np.random.default_rng(4)
    amps = rng.uniform(1000, 2000, (2, 2, 3, 4))  # element, angle, H, W
    flux = np.stack([np.full((3, 4), 1.0), np.full((3, 4), 0.5)])
    for k, theta in enumerate([30.0, -30.0]):
        s = _spectra(amps[:, k] * flux[k], seed=k)
        with h5py.File(tmp_path / f"spec_{k}.h5", "w") as f:
            d = f.create_dataset("spectra", data=s)
            d.attrs.update(energy_offset_kev=0.5, energy_slope_kev=0.02, theta_deg=theta,
                           pixel_size_nm=50.0)
            f["scalers"] = np.stack([flux[k] * 1e4])
            f["scaler_names"] = np.array([b"I0"])
        np.savez(tmp_path / f"spec_{k}.npz", spectra=s, energy_offset_kev=0.5,
                 energy_slope_kev=0.02, theta_deg=theta, scalers=np.stack([flux[k] * 1e4]),
                 scaler_names=np.array(["I0"]))
    st = read_spectra(tmp_path / "spec_*.h5", ["Fe_K", "Mn_K"], i0_scaler="I0")
    sz = read_spectra(tmp_path / "spec_*.npz", ["Fe_K", "Mn_K"], i0_scaler="I0", pixel_size_nm=50.0)
    np.testing.assert_allclose(st.angles_deg, [-30, 30])
    expected = amps[[1, 0]][:, ::-1] * flux.mean()  # sorted by angle, normalised to mean I0
    np.testing.assert_allclose(st.data, expected, rtol=0.15)
    np.testing.assert_allclose(sz.data, st.data, rtol=1e-5)
    with pytest.raises(DataFormatError, match=r"I0 scaler 'US_IC' not found; scalers present: \['I0'\]"):
        read_spectra(tmp_path / "spec_0.h5", ["Fe_K"], i0_scaler="US_IC")
    with pytest.raises(ValueError, match="unknown element symbol 'Qq'"):
        read_spectra(tmp_path / "spec_0.h5", ["Qq_K"])
    np.save(tmp_path / "raw.npy", _spectra(amps[:, 0]))
    with pytest.raises(DataFormatError, match="no energy calibration"):
        read_spectra(tmp_path / "raw.npy", ["Fe_K"], pixel_size_nm=50.0)
    one = read_spectra(tmp_path / "raw.npy", ["Fe_K"], calibration=CAL, pixel_size_nm=50.0)
    assert one.data.shape == (1, 1, 3, 4) and one.angles_deg is None


def test_one_file_stack_of_spectra(tmp_path):
    rng = np.random.default_rng(5)
    amps = rng.uniform(1000, 2000, (2, 3, 2, 2))
    s = np.stack([_spectra(amps[:, k], seed=k) for k in range(3)])
    with h5py.File(tmp_path / "stack.h5", "w") as f:
        f.attrs.update(energy_offset_kev=0.5, energy_slope_kev=0.02,
                       pixel_size_y_nm=80.0, pixel_size_x_nm=40.0)
        f["spectra"] = s
        f["theta_deg"] = np.array([0.0, 60.0, 120.0])
    st = read_spectra(tmp_path / "stack.h5", ["Mn_K", "Fe_K"])
    assert st.data.shape == (2, 3, 2, 2)
    assert st.metadata["pixel_size_y_nm"] == 80.0 and st.pixel_size_nm == 40.0
    np.testing.assert_allclose(st.data, amps, rtol=0.15)
