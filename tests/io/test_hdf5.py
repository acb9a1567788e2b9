"""Round trips and clear errors of the HDF5 layouts (io/hdf5.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from xrf_sr_kedro.io import hdf5
from xrf_sr_kedro.io.hdf5 import DataFormatError, load_h5, save_h5
from xrf_sr_kedro.types import PatchPairs, Volume, XRFStack

RNG = np.random.default_rng(0)


def _stack(n_el=2, n_frames=3, hw=(8, 10), angles=True) -> XRFStack:
    return XRFStack(
        data=RNG.random((n_el, n_frames, *hw)) * 100,
        pixel_size_nm=125.0,
        elements=("Fe_K", "Zn_K", "Cr_K")[:n_el],
        angles_deg=np.linspace(0, 180, n_frames) if angles else None,
        units="counts",
        metadata={"source": "unit test", "lo": np.arange(3.0), "nested": {"k": 1}},
    )


@pytest.mark.parametrize("n_el", [1, 2])
@pytest.mark.parametrize("angles", [True, False])
def test_stack_round_trip(tmp_path, n_el, angles):
    s = _stack(n_el=n_el, angles=angles)
    save_h5(tmp_path / "s.h5", s)
    r = load_h5(tmp_path / "s.h5")
    assert isinstance(r, XRFStack)
    np.testing.assert_array_equal(r.data, s.data)
    assert r.elements == s.elements
    assert r.pixel_size_nm == s.pixel_size_nm
    assert r.units == "counts"
    assert r.metadata == {"source": "unit test", "lo": [0.0, 1.0, 2.0], "nested": {"k": 1}}
    if angles:
        np.testing.assert_allclose(r.angles_deg, s.angles_deg)
    else:
        assert r.angles_deg is None


def test_stack_follows_data_exchange(tmp_path):
    """A one-element stack is plain (n_frames, H, W) /exchange/data with theta in degrees."""
    s = _stack(n_el=1, n_frames=4)
    save_h5(tmp_path / "s.h5", s)
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["/exchange/data"].shape == (4, 8, 10)
        assert f["/exchange/data"].dtype == np.float32
        np.testing.assert_allclose(f["/exchange/theta"][()], [0, 60, 120, 180])
        assert f.attrs["xrf_sr_kind"] == "XRFStack"
    save_h5(tmp_path / "m.h5", _stack(n_el=2, n_frames=4))
    with h5py.File(tmp_path / "m.h5") as f:
        assert f["/exchange/data"].shape == (2, 4, 8, 10)
        assert [e.decode() for e in f["/exchange/elements"][()]] == ["Fe_K", "Zn_K"]


def test_big_arrays_are_chunked_and_compressed(tmp_path):
    s = XRFStack(np.zeros((1, 4, 128, 128)), 10.0, ("Fe_K",))
    save_h5(tmp_path / "s.h5", s)
    with h5py.File(tmp_path / "s.h5") as f:
        d = f["/exchange/data"]
        assert d.chunks == (1, 128, 128)
        assert d.compression == "gzip"


def test_volume_and_pairs_round_trip(tmp_path):
    v = Volume(RNG.normal(size=(2, 3, 6, 6)), 40.0, ("Fe_K", "Zn_K"), units="a.u.",
               metadata={"algorithm": "sirt"})
    save_h5(tmp_path / "v.h5", v)
    r = load_h5(tmp_path / "v.h5")
    assert isinstance(r, Volume)
    np.testing.assert_array_equal(r.data, v.data)  # negatives allowed in a.u.
    assert (r.voxel_size_nm, r.elements, r.units, r.metadata) == (
        40.0, ("Fe_K", "Zn_K"), "a.u.", {"algorithm": "sirt"})

    p = PatchPairs(RNG.random((5, 1, 4, 4)), RNG.random((5, 1, 16, 16)), 100.0, 25.0,
                   metadata={"noise": 0.05})
    save_h5(tmp_path / "p.h5", p)
    r = load_h5(tmp_path / "p.h5")
    assert isinstance(r, PatchPairs)
    np.testing.assert_array_equal(r.lr, p.lr)
    np.testing.assert_array_equal(r.hr, p.hr)
    assert (r.lr_pixel_size_nm, r.hr_pixel_size_nm, r.scale, r.metadata) == (
        100.0, 25.0, 4, {"noise": 0.05})


def test_foreign_data_exchange_file(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = RNG.integers(0, 100, (5, 4, 6)).astype(np.uint16)
        f["/exchange/theta"] = np.linspace(0, 90, 5)
    with pytest.raises(DataFormatError, match=r"foreign.h5, key /@pixel_size_nm.*pixel size missing"):
        load_h5(path, elements=["Fe_K"])
    with pytest.raises(DataFormatError, match=r"/exchange/elements.*pass elements"):
        load_h5(path, pixel_size_nm=500.0)
    s = load_h5(path, elements="Fe_K", pixel_size_nm=500.0)
    assert s.data.shape == (1, 5, 4, 6) and s.elements == ("Fe_K",)
    np.testing.assert_allclose(s.angles_deg, np.linspace(0, 90, 5))
    assert s.pixel_size_nm == 500.0


def test_real_tooth_data_exchange_file(shared_data):
    s = load_h5(shared_data / "tomopy_tooth" / "tooth.h5", elements=["transmission"], pixel_size_nm=1000.0)
    assert s.data.shape == (1, 181, 2, 640)
    assert s.angles_deg[0] == pytest.approx(0) and s.angles_deg[-1] == pytest.approx(179, abs=1)


# --- clear errors -----------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.h5: file not found \(expected an HDF5"):
        load_h5(tmp_path / "nope.h5")


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def test_missing_key(tmp_path):
    save_h5(tmp_path / "s.h5", _stack())
    _edit(tmp_path / "s.h5", lambda f: f.__delitem__("/exchange/elements"))
    with pytest.raises(DataFormatError, match=r"s.h5, key /exchange/elements: missing; expected element names"):
        load_h5(tmp_path / "s.h5")


def test_wrong_dimensionality(tmp_path):
    save_h5(tmp_path / "s.h5", _stack())

    def flatten(f):
        del f["/exchange/data"]
        f["/exchange/data"] = np.zeros((8, 10), np.float32)

    _edit(tmp_path / "s.h5", flatten)
    with pytest.raises(DataFormatError, match=r"key /exchange/data: expected 3-D or 4-D .*got shape \(8, 10\)"):
        load_h5(tmp_path / "s.h5")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_refused_on_load_and_save(tmp_path, bad):
    save_h5(tmp_path / "s.h5", _stack())

    def poison(f):
        d = f["/exchange/data"][()]
        d[0, 0, 0, 0] = bad
        f["/exchange/data"][...] = d

    _edit(tmp_path / "s.h5", poison)
    with pytest.raises(DataFormatError, match=r"key /exchange/data: contains 1 NaN/inf"):
        load_h5(tmp_path / "s.h5")
    data = _stack().data.copy()
    data[1, 1, 1, 1] = bad
    with pytest.raises(DataFormatError, match="NaN/inf"):
        save_h5(tmp_path / "t.h5", XRFStack(data, 1.0, ("Fe_K", "Zn_K")))
    assert not (tmp_path / "t.h5").exists()


def test_negative_counts(tmp_path):
    save_h5(tmp_path / "s.h5", _stack())
    _edit(tmp_path / "s.h5", lambda f: f["/exchange/data"].__setitem__((0, 0, 0, 0), -3.0))
    with pytest.raises(DataFormatError, match=r"contains 1 negative value.*non-negative 'counts'"):
        load_h5(tmp_path / "s.h5")


def test_negative_fitted_counts_are_clipped(tmp_path, caplog):
    data = np.ones((1, 1, 4, 4))
    data[0, 0, 0, :2] = -0.5
    save_h5(tmp_path / "s.h5", XRFStack(data, 1.0, ("Fe_K",), units="fitted counts"))
    with caplog.at_level("WARNING"):
        s = load_h5(tmp_path / "s.h5")
    assert s.data.min() == 0.0
    assert "clipped 2 negative" in caplog.text


def test_missing_pixel_size(tmp_path):
    save_h5(tmp_path / "s.h5", _stack())
    _edit(tmp_path / "s.h5", lambda f: f.attrs.__delitem__("pixel_size_nm"))
    with pytest.raises(DataFormatError, match=r"s.h5, key /@pixel_size_nm: pixel size missing"):
        load_h5(tmp_path / "s.h5")


def test_not_hdf5_and_unknown_kind(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(DataFormatError, match="cannot be opened as HDF5"):
        load_h5(tmp_path / "x.h5")
    with h5py.File(tmp_path / "k.h5", "w") as f:
        f.attrs["xrf_sr_kind"] = "Banana"
    with pytest.raises(DataFormatError, match="unknown kind 'Banana'"):
        load_h5(tmp_path / "k.h5")


def test_crash_during_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "s.h5"
    first = _stack()
    save_h5(path, first)

    def exploding_writer(f, obj, p):
        f.create_dataset("half", data=np.zeros(10))
        raise RuntimeError("disk full")

    monkeypatch.setattr(hdf5, "_write_stack", exploding_writer)
    with pytest.raises(RuntimeError, match="disk full"):
        save_h5(path, _stack(n_el=1))
    r = load_h5(path)
    np.testing.assert_array_equal(r.data, first.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]  # no temp file left


def test_save_rejects_other_types(tmp_path):
    with pytest.raises(TypeError, match="XRFStack, Volume or PatchPairs"):
        save_h5(tmp_path / "x.h5", np.zeros(3))
