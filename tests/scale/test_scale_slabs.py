"""Slab-streamed reconstruction, reprojection and per-map transforms equal the in-memory ones."""

from __future__ import annotations

import numpy as np
import pytest

from xrf_sr_kedro.io.chunked import open_stack
from xrf_sr_kedro.parallel import ParallelConfig
from xrf_sr_kedro.streaming import stream_frames
from xrf_sr_kedro.tomo.recon import reconstruct
from xrf_sr_kedro.tomo.reproject import reproject
from xrf_sr_kedro.tomo.slabs import reconstruct_slabs, reproject_slabs

SERIAL = ParallelConfig(mode="serial")
RECON = dict(algorithm="ospml_quad", n_iter=3, n_subsets=4, reg_par=0.05)


def test_streamed_reconstruction_equals_in_memory(small_stack, tmp_path):
    path, data, angles = small_stack
    vol = reconstruct_slabs(
        path, tmp_path / "vol.h5", slab_slices=5, parallel=SERIAL, progress=False, **RECON
    )
    assert vol.shape == (2, 13, 32, 32) and vol.elements == ("Zn_K", "Fe_K")
    assert vol.voxel_size_nm == 50.0
    assert vol.metadata["reconstruction"]["algorithm"] == "ospml_quad"
    for e in range(2):
        ref = reconstruct(data[e], angles, progress=False, **RECON)
        np.testing.assert_allclose(vol.read(e, 0, 13), ref, rtol=1e-5, atol=1e-6 * ref.max())
    # The slabs are different slices: no slab was written twice into one place.
    assert not np.allclose(vol.read(0, 0, 5), vol.read(0, 5, 10))


def test_selected_element_and_fbp(small_stack, tmp_path):
    path, data, angles = small_stack
    vol = reconstruct_slabs(
        path, tmp_path / "v.h5", elements="Fe_K", algorithm="fbp", slab_slices=4,
        parallel=SERIAL, progress=False,
    )
    assert vol.elements == ("Fe_K",) and vol.shape[0] == 1
    ref = reconstruct(data[1], angles, algorithm="fbp", progress=False)
    np.testing.assert_allclose(vol.read(0, 0, 13), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_bad_input_stops_before_any_output(small_stack, tmp_path):
    path, _, _ = small_stack
    with pytest.raises(ValueError, match="n_subsets"):
        reconstruct_slabs(path, tmp_path / "v.h5", n_subsets=99, parallel=SERIAL, progress=False)
    with pytest.raises(ValueError, match=r"\['Cu_K'\] not in the file"):
        reconstruct_slabs(path, tmp_path / "v.h5", elements=["Cu_K"], parallel=SERIAL)
    assert not (tmp_path / "v.h5").exists()


def test_streamed_reprojection_equals_in_memory(small_stack, tmp_path):
    path, data, angles = small_stack
    vol = reconstruct_slabs(
        path, tmp_path / "v.h5", algorithm="sirt", n_iter=2, slab_slices=6, parallel=SERIAL,
        progress=False,
    )
    new_angles = np.linspace(-90.0, 90.0, 11)
    st = reproject_slabs(
        vol.path, tmp_path / "p.h5", new_angles, n_det=40, slab_slices=4, parallel=SERIAL,
        progress=False,
    )
    assert st.shape == (2, 11, 13, 40)
    np.testing.assert_allclose(st.angles_deg, new_angles)
    for e in range(2):
        ref = reproject(vol.read(e, 0, 13), new_angles, n_det=40, progress=False)
        np.testing.assert_allclose(st.read_rows(e, 0, 13), ref, rtol=1e-5, atol=1e-6 * ref.max())


def upsample_sum_preserving(maps: np.ndarray, factor: int) -> np.ndarray:
    """Stand-in for the enhancement engine: each pixel split into factor^2 equal parts."""
    return np.kron(maps, np.ones((1, factor, factor), np.float32)) / factor**2


def test_stream_frames_applies_fn_to_every_map_once(small_stack, tmp_path):
    path, data, angles = small_stack
    out = stream_frames(
        upsample_sum_preserving, path, tmp_path / "e.h5", 2, frames_per_slab=5,
        parallel=SERIAL, progress=False, fn_kwargs={"factor": 2},
    )
    assert out.shape == (2, 24, 26, 64) and out.pixel_size_nm == 25.0
    np.testing.assert_allclose(out.angles_deg, angles)
    got = np.stack([out.read_frames(e, 0, 24) for e in range(2)])
    ref = upsample_sum_preserving(data.reshape(-1, 13, 32), 2).reshape(got.shape)
    np.testing.assert_allclose(got, ref)
    assert open_stack(out.path).metadata["scale"] == 2


def test_stream_frames_refuses_a_wrong_output_shape(small_stack, tmp_path):
    path, _, _ = small_stack
    with pytest.raises(ValueError, match="expected"):
        stream_frames(upsample_sum_preserving, path, tmp_path / "e.h5", 4, parallel=SERIAL,
                      progress=False, fn_kwargs={"factor": 2})
    assert not (tmp_path / "e.h5").exists()


def test_engine_streamed_from_file_equals_in_memory(tmp_path):
    import torch
    from scale_helpers import write_stack

    from xrf_sr_kedro.inference.engine import enhance_maps
    from xrf_sr_kedro.models.dual_branch import build_model
    from xrf_sr_kedro.streaming import enhance_stack_file

    path = tmp_path / "maps.h5"
    data, _ = write_stack(path, 2, 10, 20, 24)
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    kw = dict(tile_px=16, overlap_px=4, precision="float32", device="cpu")
    out = enhance_stack_file(
        model, path, tmp_path / "e.h5", 4, frames_per_slab=7, parallel=SERIAL, progress=False,
        **kw,
    )
    # the file holds counts per fine pixel, as enhance_stack does: the engine's output / 16
    ref = enhance_maps(model, data[1, :10], 4, progress=False, **kw).data / 16
    got = out.read_frames(1, 0, 10)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * ref.max())
    np.testing.assert_allclose(got.sum(axis=(1, 2)), data[1, :10].sum(axis=(1, 2)), rtol=1e-4)
    fine_nm = open_stack(path).pixel_size_nm / 4
    assert out.units == f"counts per fine pixel ({fine_nm:.4g} x {fine_nm:.4g} nm)"
    assert out.metadata["enhancement"]["fine_pixels_per_measured_pixel"] == 16


def test_slab_progress_reaches_a_redirected_log(small_stack, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="xrf_sr_kedro.progress")
    path, _, _ = small_stack
    reconstruct_slabs(path, tmp_path / "v.h5", algorithm="fbp", slab_slices=5, parallel=SERIAL)
    lines = [r.getMessage() for r in caplog.records if r.name == "xrf_sr_kedro.progress"]
    # pytest captures stderr, so it is not a terminal: log lines instead of a bar.
    assert lines[0] == "fbp slabs: 0/6 started"
    assert lines[-1].startswith("fbp slabs: 6/6 (100 %)") and lines[-1].endswith("done")
