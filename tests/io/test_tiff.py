"""TIFF maps in, ImageJ stacks out (io/tiff.py), including the real HXN maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from xrf_sr_kedro.io import tiff
from xrf_sr_kedro.io.hdf5 import DataFormatError
from xrf_sr_kedro.io.tiff import (
    read_tiff_info,
    read_tiff_maps,
    read_tiff_voxel_size_nm,
    tiff_paths_in_folder,
    write_tiff_stack,
)
from xrf_sr_kedro.types import Volume

HXN_ELEMENTS = ["Fe_K", "Cr_K", "S_K", "P_K", "Si_K"]
RNG = np.random.default_rng(2)


def test_real_hxn_maps_load(shared_data):
    hxn = shared_data / "hxn_xrf_maps"
    s = read_tiff_maps(tiff_paths_in_folder(hxn, HXN_ELEMENTS), pixel_size_nm=150.0)
    assert s.data.shape == (5, 1, 160, 160)
    assert s.elements == tuple(HXN_ELEMENTS)
    assert np.isfinite(s.data).all() and s.data.min() >= 0
    assert s.data[0].max() > s.data[4].max()  # Fe is the strong signal in this sample


def test_2d_and_3d_maps(tmp_path):
    a2, a3 = RNG.random((5, 6)).astype(np.float32), RNG.random((3, 5, 6)).astype(np.float32)
    tifffile.imwrite(tmp_path / "a.tif", a2)
    s = read_tiff_maps({"Zn_K": tmp_path / "a.tif"}, 90.0)
    assert s.data.shape == (1, 1, 5, 6) and s.pixel_size_nm == 90.0
    tifffile.imwrite(tmp_path / "b.tif", a3)
    s = read_tiff_maps({"Zn_K": tmp_path / "b.tif"}, 90.0, angles_deg=[0, 1, 2])
    np.testing.assert_array_equal(s.data[0], a3)
    with pytest.raises(DataFormatError, match=r"shape \(3, 5, 6\) of Mn_K differs"):
        read_tiff_maps({"Zn_K": tmp_path / "a.tif", "Mn_K": tmp_path / "b.tif"}, 90.0)


def test_errors(tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match="x.tif: file not found"):
        read_tiff_maps({"Zn_K": tmp_path / "x.tif"}, 10.0)
    a = np.ones((4, 4), np.float32)
    tifffile.imwrite(tmp_path / "a.tif", a)
    with pytest.raises(DataFormatError, match="pixel size missing"):
        read_tiff_maps({"Zn_K": tmp_path / "a.tif"}, None)
    a[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", a)
    with pytest.raises(DataFormatError, match=r"nan.tif, key image: contains 1 NaN/inf"):
        read_tiff_maps({"Zn_K": tmp_path / "nan.tif"}, 10.0)
    a[0, 0] = -2
    tifffile.imwrite(tmp_path / "neg.tif", a)
    with pytest.raises(DataFormatError, match="negative"):
        read_tiff_maps({"Zn_K": tmp_path / "neg.tif"}, 10.0, units="counts")
    with caplog.at_level("WARNING"):
        s = read_tiff_maps({"Zn_K": tmp_path / "neg.tif"}, 10.0)
    assert s.data.min() == 0 and "clipped 1 negative" in caplog.text
    tifffile.imwrite(tmp_path / "line.tif", np.ones((2, 3, 4, 5), np.float32))
    with pytest.raises(DataFormatError, match=r"expected a 2-D map .* got \(2, 3, 4, 5\)"):
        read_tiff_maps({"Zn_K": tmp_path / "line.tif"}, 10.0)
    with pytest.raises(DataFormatError, match="no TIFF for element 'Cu_K'"):
        tiff_paths_in_folder(tmp_path, ["Cu_K"])


def test_imagej_stack_round_trip(tmp_path):
    v = Volume(RNG.random((2, 4, 6, 6)), 37.5, ("Fe_K", "Zn_K"), metadata={"algo": "sirt"})
    write_tiff_stack(tmp_path / "fe.tif", v, element="Fe_K")
    with tifffile.TiffFile(tmp_path / "fe.tif") as t:
        assert t.is_imagej
        assert t.imagej_metadata["unit"] == "nm"
        np.testing.assert_array_equal(t.asarray(), v.data[0])
    assert read_tiff_voxel_size_nm(tmp_path / "fe.tif") == pytest.approx(37.5)
    assert read_tiff_info(tmp_path / "fe.tif") == {
        "element": "Fe_K", "units": "a.u.", "metadata": {"algo": "sirt"}}
    with pytest.raises(ValueError, match="pass element="):
        write_tiff_stack(tmp_path / "x.tif", v)
    with pytest.raises(ValueError, match="voxel_size_nm is required"):
        write_tiff_stack(tmp_path / "x.tif", np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        write_tiff_stack(tmp_path / "x.tif", np.zeros(3), 1.0)


def test_crash_during_tiff_write_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "s.tif"
    write_tiff_stack(path, np.ones((2, 3, 3)), 5.0)

    def boom(tmp, *a, **k):
        Path(tmp).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tiff.tifffile, "imwrite", boom)
    with pytest.raises(OSError, match="disk full"):
        write_tiff_stack(path, np.zeros((2, 3, 3)), 5.0)
    np.testing.assert_array_equal(tifffile.imread(path), np.ones((2, 3, 3)))
    assert [p.name for p in tmp_path.iterdir()] == ["s.tif"]
