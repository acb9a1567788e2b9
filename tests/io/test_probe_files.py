"""Probe files (io/probe.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from xrf_sr_kedro.physics.probe import probe_from_modes

from xrf_sr_kedro.io.hdf5 import DataFormatError
from xrf_sr_kedro.io.probe import (
    load_probe_intensity,
    read_probe,
    save_probe,
)
from xrf_sr_kedro.types import ProbeIntensity

RNG = np.random.default_rng(3)


def _modes(k=3, n=9):
    return (RNG.normal(size=(k, n, n)) + 1j * RNG.normal(size=(k, n, n))).astype(np.complex64)


def probe_intensity_from_modes(modes):
    return probe_from_modes(modes, 1.0).intensity


def test_intensity_is_incoherent_sum_normalised():
    m = _modes()
    i = probe_intensity_from_modes(m)
    ref = sum(np.abs(mk.astype(np.complex128)) ** 2 for mk in m)
    np.testing.assert_allclose(i, ref / ref.sum(), rtol=1e-6)
    assert i.sum() == pytest.approx(1.0) and i.min() >= 0
    np.testing.assert_allclose(probe_intensity_from_modes(m[0]), probe_intensity_from_modes(m[:1]))


def test_npy_needs_pixel_size(tmp_path):
    m = _modes()
    np.save(tmp_path / "p.npy", m)
    with pytest.raises(DataFormatError, match=r"p.npy, key pixel_size_nm: missing"):
        read_probe(tmp_path / "p.npy")
    modes, px = read_probe(tmp_path / "p.npy", pixel_size_nm=8.0)
    np.testing.assert_array_equal(modes, m)
    assert px == 8.0
    np.save(tmp_path / "one.npy", m[0])
    assert read_probe(tmp_path / "one.npy", 8.0)[0].shape == (1, 9, 9)


def test_h5_pixel_size_from_attribute_and_key(tmp_path):
    m = _modes()
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["probe"] = m
        f["probe"].attrs["pixel_size_nm"] = 12.5
        f["other/prb"] = m[:1]
    modes, px = read_probe(tmp_path / "p.h5")
    assert modes.shape == (3, 9, 9) and px == 12.5
    modes, px = read_probe(tmp_path / "p.h5", pixel_size_nm=10.0, key="other/prb")
    assert modes.shape == (1, 9, 9) and px == 10.0
    with pytest.raises(DataFormatError, match=r"key nothere: missing"):
        read_probe(tmp_path / "p.h5", key="nothere")


def test_probe_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="file not found"):
        read_probe(tmp_path / "x.npy", 1.0)
    np.save(tmp_path / "bad.npy", np.zeros((2, 2, 3, 3), np.complex64))
    with pytest.raises(DataFormatError, match=r"expected a probe \(h, w\) or modes \(k, h, w\), got shape \(2, 2, 3, 3\)"):
        read_probe(tmp_path / "bad.npy", 1.0)
    m = _modes()
    m[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", m)
    with pytest.raises(DataFormatError, match="NaN/inf"):
        read_probe(tmp_path / "nan.npy", 1.0)
    np.save(tmp_path / "int.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(DataFormatError, match="complex"):
        read_probe(tmp_path / "int.npy", 1.0)
    with h5py.File(tmp_path / "nopx.h5", "w") as f:
        f["probe"] = _modes()
    with pytest.raises(DataFormatError, match=r"nopx.h5, key /probe/@pixel_size_nm: pixel size missing"):
        read_probe(tmp_path / "nopx.h5")
    with h5py.File(tmp_path / "none.h5", "w") as f:
        f["foo"] = np.zeros(3)
    with pytest.raises(DataFormatError, match="no probe dataset found"):
        read_probe(tmp_path / "none.h5", 1.0)


def test_save_probe_round_trip(tmp_path):
    i = probe_intensity_from_modes(_modes())
    p = ProbeIntensity(i, 25.0, {"source_file": "x.npy", "n_modes": 3})
    save_probe(tmp_path / "pi.h5", p)
    r = load_probe_intensity(tmp_path / "pi.h5")
    np.testing.assert_allclose(r.intensity, p.intensity, rtol=1e-6)
    assert r.pixel_size_nm == 25.0
    assert r.metadata["n_modes"] == 3 and r.metadata["fwhm_nm"] > 0
