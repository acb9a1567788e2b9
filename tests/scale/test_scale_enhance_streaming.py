"""The tomography chain's enhancement streamed slab by slab, through the catalog and the
reconstruction: the same numbers and records as the in-memory path."""

from __future__ import annotations

import dataclasses
import os
import stat

import numpy as np
import pytest
import torch
from scale_helpers import write_stack

from xrf_sr_kedro.datasets import XRFHDF5Dataset
from xrf_sr_kedro.inference.stack import (
    DEFAULT_STREAMING_MIN_PIXELS,
    EngineSettings,
    enhance_or_stream,
    enhance_with_checkpoint,
    use_enhancement_streaming,
)
from xrf_sr_kedro.io.checkpoint import config_as_dict
from xrf_sr_kedro.io.chunked import ChunkedStack, ChunkedVolume, open_stack
from xrf_sr_kedro.models.dual_branch import build_model
from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.pipelines.tomography.nodes import (
    ReconParams,
    enhance_reprojections,
    reconstruct_volume,
)
from xrf_sr_kedro.tomo.recon import reconstruct_stack

ENGINE = EngineSettings(tile_px=16, overlap_px=4, precision="float32", streaming="off")


@pytest.fixture(scope="module")
def checkpoint() -> dict:
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    return {"format_version": 1, "config": config_as_dict(model.config),
            "model_state": model.state_dict(), "preset": "tiny", "path": "tiny.pt"}


@pytest.fixture
def stack_file(tmp_path):
    """Two elements, 7 angles, 20 x 24 px at 50 nm."""
    path = tmp_path / "reprojections.h5"
    write_stack(path, 2, 7, 20, 24, seed=3)
    return open_stack(path)


def probe():
    return gaussian_probe(40.0, 12.5)


def streamed(settings: EngineSettings, folder, **changes) -> EngineSettings:
    return dataclasses.replace(settings, streaming="on", frames_per_slab=3,
                               streaming_dir=str(folder), **changes)


def test_the_default_keeps_small_stacks_in_memory_bit_for_bit(checkpoint, stack_file):
    stack = stack_file.to_stack()
    auto = dataclasses.replace(ENGINE, streaming="auto")
    assert auto.streaming_min_pixels == DEFAULT_STREAMING_MIN_PIXELS == 2**28
    got = enhance_or_stream(stack, checkpoint, probe(), auto)
    ref = enhance_with_checkpoint(stack, checkpoint, probe(), ENGINE)
    assert not isinstance(got, ChunkedStack)
    np.testing.assert_array_equal(got.data, ref.data)
    assert got.metadata == ref.metadata and got.units == ref.units
    # a lazy input below the threshold is read whole and gives the same
    lazy = enhance_or_stream(stack_file, checkpoint, probe(), auto)
    np.testing.assert_array_equal(lazy.data, ref.data)


def test_auto_streams_above_the_threshold_and_the_switch_is_checked():
    assert use_enhancement_streaming(101, "auto", 100)
    assert not use_enhancement_streaming(100, "auto", 100)
    assert use_enhancement_streaming(1, "on", 100) and not use_enhancement_streaming(10**12, "off")
    with pytest.raises(ValueError, match="enhancement.engine streaming"):
        use_enhancement_streaming(1, "yes")
    with pytest.raises(ValueError, match="streaming_min_pixels"):
        use_enhancement_streaming(1, "auto", -1)


@pytest.mark.parametrize("lazy_input", [False, True])
def test_streamed_enhancement_equals_in_memory(checkpoint, stack_file, tmp_path, lazy_input):
    stack = stack_file.to_stack()
    ref = enhance_with_checkpoint(stack, checkpoint, probe(), ENGINE)
    folder = tmp_path / "scratch"
    # auto above a threshold just below this stack's 2 x 7 x 80 x 96 enhanced pixels
    settings = dataclasses.replace(streamed(ENGINE, folder), streaming="auto",
                                   streaming_min_pixels=2 * 7 * 80 * 96 - 1)
    got = enhance_or_stream(stack_file if lazy_input else stack, checkpoint, probe(), settings)
    assert isinstance(got, ChunkedStack) and got.scratch
    assert got.path.parent.parent == folder and got.path.is_file()
    assert [p.name for p in got.path.parent.iterdir()] == ["enhanced.h5"]  # input copy gone
    assert got.shape == ref.data.shape
    whole = got.to_stack()
    np.testing.assert_allclose(whole.data, ref.data, rtol=1e-6, atol=1e-6 * ref.data.max())
    assert whole.units == ref.units == "counts per fine pixel (12.5 x 12.5 nm)"
    assert whole.pixel_size_nm == pytest.approx(ref.pixel_size_nm)
    assert whole.elements == ref.elements
    np.testing.assert_array_equal(whole.angles_deg, ref.angles_deg)
    mine, theirs = whole.metadata["enhancement"], ref.metadata["enhancement"]
    assert mine.keys() == theirs.keys()
    assert mine["fine_pixels_per_measured_pixel"] == 16 and mine["precision"] == "float32"
    for key in ("conservation_scale", "clipped_fraction"):
        np.testing.assert_allclose(mine.pop(key), theirs.pop(key), rtol=1e-6)
    assert mine == theirs  # checkpoint, lo/hi per map, units, tiling, clipping counts
    assert {k: v for k, v in whole.metadata.items() if k != "enhancement"} == {
        k: v for k, v in ref.metadata.items() if k != "enhancement"}


def test_streamed_selected_elements_through_the_node(checkpoint, stack_file, tmp_path):
    settings = streamed(ENGINE, tmp_path / "s", elements=["Fe_K"])
    got = enhance_reprojections(stack_file.to_stack(), checkpoint, probe(), settings)
    ref = enhance_with_checkpoint(stack_file.to_stack(), checkpoint, probe(),
                                  dataclasses.replace(ENGINE, elements=["Fe_K"]))
    assert isinstance(got, ChunkedStack) and got.elements == ("Fe_K",)
    np.testing.assert_allclose(got.read_frames(0, 0, 7), ref.data[0], rtol=1e-6,
                               atol=1e-6 * ref.data.max())


def test_a_failed_streamed_enhancement_leaves_no_files(checkpoint, stack_file, tmp_path,
                                                       monkeypatch):
    import xrf_sr_kedro.inference.engine as engine

    real, calls = engine.enhance_maps, []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "enhance_maps", fail_second)
    folder = tmp_path / "scratch"
    with pytest.raises(RuntimeError, match="killed"):
        enhance_or_stream(stack_file, checkpoint, probe(), streamed(ENGINE, folder))
    assert len(calls) == 2 and list(folder.iterdir()) == []


def test_catalog_moves_a_streamed_stack_and_loads_it_lazily(checkpoint, stack_file, tmp_path):
    old = os.umask(0o027)
    try:
        got = enhance_or_stream(stack_file, checkpoint, probe(), streamed(ENGINE, tmp_path / "s"))
        expected = got.to_stack()
        target = tmp_path / "catalog" / "enhanced_reprojections.h5"
        XRFHDF5Dataset(filepath=str(target), lazy_stacks=True).save(got)
    finally:
        os.umask(old)
    assert not got.path.exists() and not got.path.parent.exists()  # moved, folder removed
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    lazy = XRFHDF5Dataset(filepath=str(target), lazy_stacks=True, lazy_min_voxels=1000).load()
    assert isinstance(lazy, ChunkedStack) and not lazy.scratch
    back = lazy.to_stack()
    np.testing.assert_array_equal(back.data, expected.data)
    assert back.metadata == expected.metadata and back.units == expected.units
    # small for the threshold, or an entry without lazy_stacks: whole, as before
    for ds in (XRFHDF5Dataset(filepath=str(target), lazy_stacks=True),
               XRFHDF5Dataset(filepath=str(target), lazy_min_voxels=0)):
        whole = ds.load()
        assert not isinstance(whole, ChunkedStack)
        np.testing.assert_array_equal(whole.data, expected.data)
    # a stack that is not scratch is copied frame slab by frame slab, the source kept
    copy = tmp_path / "copy.h5"
    XRFHDF5Dataset(filepath=str(copy)).save(lazy)
    assert target.is_file()
    np.testing.assert_array_equal(open_stack(copy).to_stack().data, expected.data)


def test_reconstruction_from_a_lazy_stack_equals_in_memory(stack_file, tmp_path, monkeypatch):
    recon = dict(algorithm="sirt", n_iter=2, elements=["Fe_K"], slab_nm=(100.0, 900.0),
                 slab_slices=5, streaming_dir=str(tmp_path / "r"))
    in_memory = stack_file.to_stack()
    ref_streamed = reconstruct_stack(in_memory, streaming="on", **recon)
    ref_whole = reconstruct_stack(in_memory, streaming="off", **recon)

    def never_whole(*args, **kwargs):
        raise AssertionError("the streamed path read the lazy stack whole")

    with monkeypatch.context() as m:
        m.setattr(ChunkedStack, "to_stack", never_whole)
        got = reconstruct_volume(stack_file, ReconParams(streaming="on", **recon))
    assert isinstance(got, ChunkedVolume) and got.scratch
    assert got.shape == (1, 16, 24, 24) and got.elements == ("Fe_K",)
    np.testing.assert_array_equal(got.read(0, 0, 16), ref_streamed.read(0, 0, 16))
    np.testing.assert_allclose(got.read(0, 0, 16), ref_whole.data[0], rtol=1e-5,
                               atol=1e-5 * np.abs(ref_whole.data).max())
    assert got.metadata == ref_streamed.metadata
    # a small lazy stack goes the in-memory path: the same Volume, bit for bit
    small = reconstruct_stack(stack_file, streaming="auto", **recon)
    np.testing.assert_array_equal(small.data, ref_whole.data)
    assert small.metadata == ref_whole.metadata
    assert [p.name for p in (tmp_path / "r").iterdir() if p.is_dir() and any(
        q.name == "stack_rows.h5" for q in p.iterdir())] == []  # row copies deleted


def test_real_data_report_reads_a_lazy_enhanced_stack_by_slabs(checkpoint, stack_file, tmp_path,
                                                               monkeypatch):
    import xrf_sr_kedro.streaming
    from xrf_sr_kedro.evaluation.real_data_report import _output_row, reprojection_consistency

    stack = stack_file.to_stack()
    ref = enhance_with_checkpoint(stack, checkpoint, probe(), ENGINE)
    lazy = enhance_or_stream(stack, checkpoint, probe(), streamed(ENGINE, tmp_path / "s"))
    want = reprojection_consistency(stack, ref, probe())
    monkeypatch.setattr(xrf_sr_kedro.streaming, "DEFAULT_FRAMES_PER_SLAB", 3)
    got = reprojection_consistency(stack, lazy, probe())  # 7 frames in slabs of 3, 3 and 1
    assert want > 0 and got == pytest.approx(want, rel=1e-5)
    assert _output_row("e", lazy) == _output_row("e", ref)
