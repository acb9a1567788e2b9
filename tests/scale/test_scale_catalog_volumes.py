"""Volumes larger than memory through the catalog: save (move or copy), lazy load, readers.

``XRFHDF5Dataset`` saves a lazy ``ChunkedVolume`` slab by slab (moving the streamed
reconstruction's scratch file instead of copying it) and loads a volume lazily
above ``lazy_min_voxels``; reprojection, the slice figures and the TIFF export take
the lazy volume and give what they give for the same volume in memory.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from kedro.io.core import DatasetError

from xrf_sr_kedro.datasets import TiffVolumeDataset, XRFHDF5Dataset
from xrf_sr_kedro.io import volume_files
from xrf_sr_kedro.io.chunked import ChunkedVolume, open_volume, slab_ranges, volume_writer
from xrf_sr_kedro.io.hdf5 import load_h5, save_h5
from xrf_sr_kedro.io.volume_files import element_arrays
from xrf_sr_kedro.tomo.reproject import project_volume
from xrf_sr_kedro.tomo.slabs import project_slabs
from xrf_sr_kedro.types import Volume

META = {"center_offset_nm": 45.0, "center_offset_px": 1.5, "center_method": "test",
        "algorithm": "sirt"}


def _volume(shape=(2, 11, 24, 24), seed=0) -> Volume:
    data = np.random.default_rng(seed).random(shape).astype(np.float32)
    return Volume(data, voxel_size_nm=30.0, elements=("Zn_K", "Fe_K"), units="a.u.",
                  metadata=META)


def _scratch(folder: Path, vol: Volume) -> ChunkedVolume:
    """A streamed-reconstruction-like scratch file in its own folder."""
    folder.mkdir(parents=True)
    path = folder / "volume.h5"
    with volume_writer(path, vol.data.shape, vol.voxel_size_nm, vol.elements,
                       units=vol.units, metadata=vol.metadata) as w:
        for e in range(vol.data.shape[0]):
            for s0, s1 in slab_ranges(vol.data.shape[1], 4):
                w[e, s0:s1] = vol.data[e, s0:s1]
    return replace(open_volume(path), scratch=True)


def test_scratch_volume_is_moved_into_place_and_loads_lazily_above_the_size(tmp_path):
    vol = _volume()
    scratch = _scratch(tmp_path / "xrf_sr_recon_x", vol)
    target = tmp_path / "data" / "raw_volume.h5"
    XRFHDF5Dataset(filepath=str(target)).save(scratch)
    assert not scratch.path.exists() and not scratch.path.parent.exists()  # moved, not copied
    with h5py.File(target) as f:
        assert f["volume/data"].chunks == (1, 1, 24, 24)
    n_voxels = vol.data.size
    small = XRFHDF5Dataset(filepath=str(target), lazy_min_voxels=n_voxels).load()
    large = XRFHDF5Dataset(filepath=str(target), lazy_min_voxels=n_voxels - 1).load()
    assert isinstance(small, Volume) and isinstance(large, ChunkedVolume)
    np.testing.assert_array_equal(small.data, vol.data)
    np.testing.assert_array_equal(large.read(1, 3, 9), vol.data[1, 3:9])
    assert large.metadata == small.metadata == META
    assert not large.scratch  # a catalog file is never moved away by a later save
    # an in-memory volume saved by the same entry keeps save_h5's file, read whole
    save_h5(tmp_path / "whole.h5", vol)
    assert isinstance(XRFHDF5Dataset(filepath=str(tmp_path / "whole.h5")).load(), Volume)


def test_scratch_volume_on_another_file_system_is_copied_then_deleted(tmp_path, monkeypatch):
    vol = _volume()
    scratch = _scratch(tmp_path / "scratch", vol)

    rename = volume_files.os.replace

    def cross_device(src, dst):  # the scratch file sits on another file system
        if Path(src) == scratch.path:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        rename(src, dst)

    monkeypatch.setattr(volume_files.os, "replace", cross_device)
    out = volume_files.save_volume(tmp_path / "v.h5", scratch, slab_slices=3)
    assert not scratch.path.exists()
    np.testing.assert_array_equal(load_h5(tmp_path / "v.h5").data, vol.data)
    assert out.path == tmp_path / "v.h5"


def test_a_catalog_volume_is_copied_not_moved(tmp_path):
    vol = _volume()
    source = replace(_scratch(tmp_path / "src", vol), scratch=False)
    XRFHDF5Dataset(filepath=str(tmp_path / "copy.h5")).save(source)
    assert source.path.exists()
    np.testing.assert_array_equal(load_h5(tmp_path / "copy.h5").data, vol.data)


def test_lazy_save_refuses_a_foreign_file_and_a_bad_threshold(tmp_path):
    foreign = tmp_path / "theirs.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    scratch = _scratch(tmp_path / "s", _volume())
    with pytest.raises(DatasetError, match="refusing to overwrite"):
        XRFHDF5Dataset(filepath=str(foreign)).save(scratch)
    assert scratch.path.exists()  # nothing moved over the user's file
    with pytest.raises(ValueError, match="lazy_min_voxels"):
        XRFHDF5Dataset(filepath=str(tmp_path / "v.h5"), lazy_min_voxels=-1)


def test_lazy_reprojection_equals_the_in_memory_one(tmp_path):
    vol = _volume()
    lazy = _scratch(tmp_path / "s", vol)
    angles = np.linspace(-90, 90, 17)
    whole = project_volume(vol, angles, clip_negative=True, metadata={"kind": "r"})
    streamed = project_volume(lazy, angles, clip_negative=True, metadata={"kind": "r"})
    assert streamed.data.shape == whole.data.shape == (2, 17, 11, 24)
    np.testing.assert_allclose(streamed.data, whole.data, rtol=1e-5, atol=1e-5 * whole.data.max())
    assert streamed.metadata == whole.metadata  # the centre travels on in nm
    assert streamed.metadata["center_offset_nm"] == pytest.approx(45.0)
    assert streamed.pixel_size_nm == whole.pixel_size_nm and streamed.elements == whole.elements
    # slabs that do not divide the slices: every slice projected once, in its place
    sums = project_slabs(lazy, angles, center_offset_px=1.5, slab_slices=4, progress=False)
    np.testing.assert_allclose(sums * vol.voxel_size_nm, whole.data, rtol=1e-5,
                               atol=1e-5 * whole.data.max())


def test_lazy_element_views_read_the_planes_a_figure_shows(tmp_path):
    vol = _volume()
    lazy = _scratch(tmp_path / "s", vol)
    for (name, view), (name_mem, arr) in zip(element_arrays(lazy), element_arrays(vol)):
        assert name == name_mem and view.shape == arr.shape and view.ndim == 3
        np.testing.assert_array_equal(view[5], arr[5])
        np.testing.assert_array_equal(view[:, 7, :], arr[:, 7, :])
        np.testing.assert_array_equal(view[:, :, 3], arr[:, :, 3])
    from xrf_sr_kedro.metrics.plots import plot_orthogonal_slices

    fig = plot_orthogonal_slices(lazy.element(0), lazy.voxel_size_nm, "lazy")
    assert len(fig.axes) >= 3


def test_tiff_export_of_a_lazy_volume_is_the_in_memory_file(tmp_path):
    vol = _volume()
    lazy = _scratch(tmp_path / "s", vol)
    TiffVolumeDataset(filepath=str(tmp_path / "mem" / "v.tif")).save(vol)
    TiffVolumeDataset(filepath=str(tmp_path / "lazy" / "v.tif")).save(lazy)
    for element in vol.elements:
        mem = (tmp_path / "mem" / f"v_{element}.tif").read_bytes()
        assert (tmp_path / "lazy" / f"v_{element}.tif").read_bytes() == mem


def test_lazy_reprojection_bounds_the_slab_by_bytes(tmp_path, monkeypatch):
    from xrf_sr_kedro.tomo import slabs

    vol = _volume()
    lazy = _scratch(tmp_path / "s", vol)
    reads = []
    read = ChunkedVolume.read

    def counting(self, e, s0, s1):
        reads.append(s1 - s0)
        return read(self, e, s0, s1)

    monkeypatch.setattr(ChunkedVolume, "read", counting)
    monkeypatch.setattr(slabs, "PROJECT_SLAB_BYTES", 3 * 24 * 24 * 4)  # 3 slices a slab
    sums = project_slabs(lazy, [0.0, 45.0], progress=False)
    assert max(reads) == 3 and sum(reads) == 2 * 11  # every slice of both elements once
    np.testing.assert_allclose(sums[:, 0], vol.data.sum(axis=2), rtol=1e-5)  # 0 deg: rays along y
