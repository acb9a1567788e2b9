"""Read-only Kedro datasets over the beamline readers: MAPS HDF5, spectra, MATLAB .mat.

Each loads the same stack as its io/ reader, refuses saves, and reports a missing
element (listing those present) or file through ``exists()`` / ``missing_reason()``,
which the run's input check turns into one line before any node runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io.core import DatasetError
from scipy.io import savemat

from xrf_sr_kedro.datasets import MapsHDF5Dataset, MatMapsDataset, SpectraDataset
from xrf_sr_kedro.io.maps import write_maps_like
from xrf_sr_kedro.physics.real_like import CALIBRATION, ELEMENTS, poisson_spectra
from xrf_sr_kedro.types import XRFStack


@pytest.fixture
def maps_files(tmp_path):
    rng = np.random.default_rng(0)
    maps = rng.uniform(10, 20, (2, 3, 5, 6))  # element, angle, y, x
    i0 = rng.uniform(0.5, 1.5, (3, 5, 6))
    for k, theta in enumerate((30.0, 0.0, -30.0)):
        write_maps_like(tmp_path / f"2xfm_{k}.h5", maps[:, k] * i0[k], ["W_L", "Fe"],
                        scalers=i0[k][None], scaler_names=["US_IC"], theta_deg=theta)
    return tmp_path, maps, i0


def test_maps_dataset_reads_normalises_and_is_read_only(maps_files):
    folder, maps, i0 = maps_files
    ds = MapsHDF5Dataset(filepath=str(folder / "2xfm_*.h5"), elements=["Fe_K"],
                         i0_scaler="US_IC", theta_pv="2xfm:m58.VAL")
    assert ds.exists() and ds.read_only
    stack = ds.load()
    assert isinstance(stack, XRFStack) and stack.elements == ("Fe_K",)
    np.testing.assert_allclose(stack.angles_deg, [-30.0, 0.0, 30.0])
    # I0-normalised: maps * mean(I0) / I0, back to the i0-free maps up to the mean
    np.testing.assert_allclose(stack.data[0], maps[1, ::-1] * i0.mean(), rtol=1e-5)
    assert ds._describe()["elements"] == ["Fe_K"]
    with pytest.raises(DatasetError, match="read-only"):
        ds.save(stack)


def test_maps_dataset_missing_element_lists_the_channels(maps_files):
    folder, _, _ = maps_files
    ds = MapsHDF5Dataset(filepath=str(folder / "2xfm_*.h5"), elements=["Zn_K"])
    assert not ds.exists()
    reason = ds.missing_reason()
    assert "['Zn_K'] not found" in reason and "'W_L', 'Fe_K'" in reason
    with pytest.raises(DatasetError, match="Zn_K"):
        ds.load()
    nothing = MapsHDF5Dataset(filepath=str(folder / "scan_*.h5"), elements=["Fe_K"])
    assert "no MAPS HDF5 file matches" in nothing.missing_reason()


def test_spectra_dataset_checks_lines_against_the_calibration(tmp_path):
    rng = np.random.default_rng(0)
    counts = np.stack([np.full((20, 20), 200.0), np.full((20, 20), 100.0)])  # Mn, Fe
    spectra = poisson_spectra(counts, 0.5, rng)
    np.savez(tmp_path / "s.npz", spectra=spectra, energy_offset_kev=CALIBRATION.offset_kev,
             energy_slope_kev=CALIBRATION.slope_kev, theta_deg=12.0, pixel_size_nm=100.0)
    ds = SpectraDataset(filepath=str(tmp_path / "s.npz"), elements=list(ELEMENTS))
    assert ds.exists()
    stack = ds.load()
    np.testing.assert_allclose(stack.data.mean(axis=(1, 2, 3)), [200.0, 100.0], rtol=0.05)
    # Zn K-alpha (8.6 keV) lies outside the 5.0-7.5 keV range of these spectra
    zn = SpectraDataset(filepath=str(tmp_path / "s.npz"), elements=["Fe_K", "Zn_K"])
    assert not zn.exists()
    assert "['Zn_K'] lie outside the calibrated range" in zn.missing_reason()
    # a given calibration overrides the file's: Zn now fits
    wide = SpectraDataset(filepath=str(tmp_path / "s.npz"), elements=["Zn_K"],
                          calibration={"offset_kev": 5.0, "slope_kev": 0.04})
    assert wide.exists()
    unknown = SpectraDataset(filepath=str(tmp_path / "s.npz"), elements=["Xx_K"])
    assert "Xx" in unknown.missing_reason()
    gone = SpectraDataset(filepath=str(tmp_path / "none.h5"), elements=["Fe_K"])
    assert "none.h5: file not found" in gone.missing_reason()


def test_mat_dataset_reads_and_lists_elements_present(tmp_path):
    rng = np.random.default_rng(1)
    maps = rng.uniform(1, 5, (2, 2, 4, 6))
    names = np.array(["Ca_K", "Zn_K"], dtype=object)
    savemat(tmp_path / "m.mat", {"maps": maps, "elements": names,
                                 "theta_deg": np.array([15.0, -15.0]), "pixel_size_nm": 80.0})
    ds = MatMapsDataset(filepath=str(tmp_path / "m.mat"), elements=["Zn_K"])
    assert ds.exists()
    stack = ds.load()
    np.testing.assert_allclose(stack.data[0], maps[1, ::-1])
    assert stack.pixel_size_nm == 80.0
    missing = MatMapsDataset(filepath=str(tmp_path / "m.mat"), elements=["Fe_K"])
    assert "['Fe_K'] not found; present in the file: ['Ca_K', 'Zn_K']" in missing.missing_reason()
    with pytest.raises(DatasetError):
        missing.save(stack)
