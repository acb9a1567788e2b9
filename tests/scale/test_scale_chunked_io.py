"""Chunked HDF5 writers and lazy readers: round trips, atomicity, umask, compatibility."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from xrf_sr_kedro.io.chunked import (
    open_stack,
    open_volume,
    slab_ranges,
    volume_writer,
)
from xrf_sr_kedro.io.hdf5 import load_h5
from xrf_sr_kedro.types import Volume, XRFStack


def test_slab_ranges_cover_every_item_once():
    ranges = slab_ranges(13, 5)
    assert ranges == [(0, 5), (5, 10), (10, 13)]
    covered = np.concatenate([np.arange(a, b) for a, b in ranges])
    np.testing.assert_array_equal(covered, np.arange(13))
    with pytest.raises(ValueError, match="slab size"):
        slab_ranges(10, 0)


def test_stack_round_trip_by_rows_and_frames(small_stack):
    path, data, angles = small_stack
    s = open_stack(path)
    assert s.shape == data.shape and s.elements == ("Zn_K", "Fe_K")
    np.testing.assert_allclose(s.angles_deg, angles)
    np.testing.assert_array_equal(s.read_rows(1, 3, 9), data[1, :, 3:9])
    np.testing.assert_array_equal(s.read_frames(0, 20, 24), data[0, 20:24])
    with h5py.File(path) as f:  # chunks are thin along rows: one slab reads few chunks
        assert f["exchange/data"].chunks == (1, 1, 4, 32)
    # The eager reader of the project reads the same file.
    stack = load_h5(path)
    assert isinstance(stack, XRFStack)
    np.testing.assert_array_equal(stack.data, data)


def _write_volume(path, vol, **kw):
    with volume_writer(path, vol.shape, 25.0, ["Zn_K"], units="a.u.", **kw) as w:
        for s0, s1 in slab_ranges(vol.shape[1], 3):
            w[0, s0:s1] = vol[0, s0:s1]


def test_volume_round_trip_lazy_and_eager(tmp_path):
    vol = np.random.default_rng(1).random((1, 7, 16, 16)).astype(np.float32)
    path = tmp_path / "v.h5"
    _write_volume(path, vol, metadata={"note": "x"})
    lazy = open_volume(path)
    assert lazy.shape == vol.shape and lazy.voxel_size_nm == 25.0
    assert lazy.metadata == {"note": "x"}
    np.testing.assert_array_equal(lazy.read(0, 2, 5), vol[0, 2:5])
    eager = load_h5(path)
    assert isinstance(eager, Volume)
    np.testing.assert_array_equal(eager.data, vol)


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "v.h5"
    vol = np.ones((1, 4, 8, 8), np.float32)
    _write_volume(path, vol)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with volume_writer(path, vol.shape, 25.0, ["Zn_K"]) as w:
            w[0, 0:2] = 2 * vol[0, 0:2]
            raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.h5"]


def test_missing_slabs_are_refused(tmp_path):
    path = tmp_path / "v.h5"
    with pytest.raises(ValueError, match="1 of 4 slab positions"):
        with volume_writer(path, (1, 4, 8, 8), 25.0, ["Zn_K"]) as w:
            w[0, 0:3] = np.ones((3, 8, 8))
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_nan_block_is_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        with volume_writer(tmp_path / "v.h5", (1, 2, 4, 4), 25.0, ["Zn_K"]) as w:
            w[0, 0:2] = np.full((2, 4, 4), np.nan)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_file_honours_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = tmp_path / "v.h5"
        _write_volume(path, np.ones((1, 3, 4, 4), np.float32))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_foreign_data_exchange_file_without_names(tmp_path):
    path = tmp_path / "dx.h5"
    data = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    with h5py.File(path, "w") as f:
        f["exchange/data"] = data
        f["exchange/theta"] = np.radians([0.0, 60.0, 120.0])
        f["exchange/theta"].attrs["units"] = "rad"
    s = open_stack(path, elements=["Zn_K"], pixel_size_nm=100.0)
    assert s.shape == (1, 3, 4, 5) and s.elements == ("Zn_K",)
    np.testing.assert_allclose(s.angles_deg, [0.0, 60.0, 120.0])
    np.testing.assert_array_equal(s.read_rows(0, 1, 3), data[:, 1:3])


def test_stack_without_angles_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "dx.h5"
    with h5py.File(path, "w") as f:
        f["exchange/data"] = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="/exchange/theta"):
        open_stack(path, pixel_size_nm=100.0)


def test_kedro_dataset_saves_a_volume_and_loads_a_lazy_handle(tmp_path):
    from xrf_sr_kedro.datasets import ChunkedVolumeDataset
    from xrf_sr_kedro.io.chunked import ChunkedVolume

    vol = Volume(
        data=np.random.default_rng(2).random((2, 9, 8, 8)).astype(np.float32),
        voxel_size_nm=12.5, elements=("Zn_K", "Fe_K"), metadata={"run": 1},
    )
    ds = ChunkedVolumeDataset(filepath=str(tmp_path / "out" / "v.h5"), slab_slices=4)
    assert not ds.exists()
    ds.save(vol)
    lazy = ds.load()
    assert isinstance(lazy, ChunkedVolume) and lazy.elements == vol.elements
    np.testing.assert_array_equal(lazy.read(1, 3, 9), vol.data[1, 3:9])
    with h5py.File(lazy.path) as f:
        assert f["volume/data"].chunks == (1, 1, 8, 8)
    # A lazy volume saved to another dataset is copied slab by slab.
    copy = ChunkedVolumeDataset(filepath=str(tmp_path / "copy.h5"))
    copy.save(lazy)
    np.testing.assert_array_equal(load_h5(copy.load().path).data, vol.data)


def test_failure_while_creating_the_file_leaves_nothing(tmp_path):
    from xrf_sr_kedro.io.chunked import ChunkedWriter

    def broken(f):
        raise RuntimeError("cannot write attributes")

    with pytest.raises(RuntimeError, match="cannot write"):
        with ChunkedWriter(tmp_path / "x.h5", "d", (2, 3), prepare=broken):
            pass
    assert list(tmp_path.iterdir()) == []
