"""A streamed tomography run through ``kedro run``: the catalog saves and loads volumes lazily.

The ``tomography`` pipeline (tiny env, a small measured stack, an untrained tiny
network) runs twice in one project copy: once as the default does (volumes in
memory), once with ``tomography.recon.streaming: on``,
``enhancement.engine.streaming: on`` and every volume and enhanced-reprojection
entry of the catalog loading lazily (``lazy_min_voxels: 0``), so that the
reprojections, the enhanced chain, the figures and the TIFF export all take the
lazy ``ChunkedVolume``, and the enhanced reprojections are streamed, moved into
place, loaded as a lazy ``ChunkedStack`` and reconstructed by row slabs.  The streamed run's volumes must equal the in-memory run's to
float32 rounding, be written chunked one slice per chunk (not the gzip frames of
``save_h5``), and leave nothing in the scratch folder (the files were moved, not
copied).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from xrf_sr_kedro.io.hdf5 import load_h5, save_h5
from xrf_sr_kedro.tomo.reproject import even_angles_deg, project_volume
from xrf_sr_kedro.types import Volume

VOLUMES = {
    "raw_volume": "07_model_output/raw_volume.h5",
    "enhanced_volume": "07_model_output/enhanced_volume.h5",
    "limited_projection_raw_volume": "02_intermediate/limited_projection_raw_volume.h5",
    "limited_projection_volume": "07_model_output/limited_projection_volume.h5",
}

#: float32 enhancement in both runs: bfloat16 (``auto`` on a CPU with native bf16)
#: would turn float32 rounding differences of the reprojections into bf16 steps
FLOAT32 = {"enhancement": {"engine": {"precision": "float32"}}}


def _measured_stack(path: Path) -> None:
    """Zn_K projections (counts) of two discs: 13 angles, 16 rows of 32 px at 30 nm."""
    n, rows = 32, 16
    yy, xx = np.mgrid[:n, :n] - n / 2 + 0.5
    slice_ = 40.0 * ((xx - 4) ** 2 + yy**2 < 64) + 25.0 * ((xx + 7) ** 2 + (yy - 5) ** 2 < 16)
    truth = np.repeat(slice_[None, None].astype(np.float32), rows, axis=1)
    truth[0, : rows // 3] *= 0.5  # different rows, so slabs are not copies of each other
    stack = project_volume(
        Volume(truth, voxel_size_nm=30.0, elements=("Zn_K",), units="counts"),
        even_angles_deg(13), metadata={"kind": "test measurement"},
    )
    counts = stack.data / 30.0 + 1.0  # counts per pixel, none zero
    save_h5(path, type(stack)(counts.astype(np.float32), 30.0, stack.elements,
                              stack.angles_deg, "counts", stack.metadata))


def _run(project: Path, runtime_params: dict) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="tiny",
                             runtime_params=runtime_params) as session:
        session.run(pipeline_names=["tomography"])


ENHANCED = {
    "enhanced_reprojections": "07_model_output/enhanced_reprojections.h5",
    "limited_projection_enhanced_reprojections":
        "07_model_output/limited_projection_enhanced_reprojections.h5",
}


def _lazy_volume_entries(project: Path) -> dict:
    """The base catalog's volume and enhanced-reprojection entries, each loading lazily
    whatever its size."""
    base = yaml.safe_load((project / "conf" / "base" / "catalog.yml").read_text())
    assert all(base[name].get("lazy_stacks") for name in ENHANCED)
    return {name: {**base[name], "lazy_min_voxels": 0} for name in (*VOLUMES, *ENHANCED)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, make_project_copy, tiny_checkpoint) -> dict[str, Path]:
    """Data folders of the in-memory run and of the streamed run, and the scratch folder."""
    root = tmp_path_factory.mktemp("kedro_streaming")
    project = make_project_copy(root / "project")
    (project / "conf" / "tiny" / "mlflow.yml").write_text(yaml.safe_dump({"server": {
        "mlflow_tracking_uri": f"sqlite:///{project / 'mlflow.db'}",
        "mlflow_registry_uri": None, "credentials": None}}))
    _measured_stack(project / "data" / "01_raw" / "simulated_xrf_projections.h5")
    tiny_checkpoint(project / "data" / "06_models" / "selected_model.pt")
    cwd = os.getcwd()
    os.chdir(project)
    try:
        _run(project, FLOAT32)
        shutil.copytree(project / "data", root / "in_memory")
        # the run's env (tiny) overrides the base entries; conf/local is not read with --env
        (project / "conf" / "tiny" / "catalog.yml").write_text(
            yaml.safe_dump(_lazy_volume_entries(project))
        )
        scratch = root / "scratch"
        _run(project, {"enhancement": {"engine": {
            "precision": "float32", "streaming": "on", "frames_per_slab": 5,
            "streaming_dir": str(scratch)}}, "tomography": {"recon": {
            "streaming": "on", "slab_slices": 5, "streaming_dir": str(scratch)}}})
    finally:
        os.chdir(cwd)
    return {"in_memory": root / "in_memory", "streamed": project / "data", "scratch": scratch}


def test_streamed_run_saves_the_in_memory_volumes_chunked(runs):
    for name, rel in VOLUMES.items():
        whole = load_h5(runs["in_memory"] / rel)
        streamed = load_h5(runs["streamed"] / rel)  # the eager reader reads the chunked file
        assert isinstance(whole, Volume) and isinstance(streamed, Volume)
        assert streamed.data.shape == whole.data.shape, name
        assert streamed.voxel_size_nm == whole.voxel_size_nm
        scale = float(np.abs(whole.data).max())
        assert scale > 0, name
        np.testing.assert_allclose(streamed.data, whole.data, rtol=0, atol=2e-5 * scale,
                                   err_msg=name)
        # metadata carried through the streamed path: centre, angles, algorithm
        for key in ("center_offset_nm", "center_offset_px", "algorithm", "n_projections",
                    "angles_deg_min", "angles_deg_max"):
            assert streamed.metadata[key] == pytest.approx(whole.metadata[key]), (name, key)
        with h5py.File(runs["streamed"] / rel) as f:  # written slab by slab: a slice a chunk
            ds = f["volume/data"]
            assert ds.chunks == (1, 1, *ds.shape[2:]) and ds.compression is None, name
        with h5py.File(runs["in_memory"] / rel) as f:  # the in-memory path kept save_h5's file
            assert f["volume/data"].compression == "gzip", name


def test_enhanced_chain_ran_on_lazy_volumes_and_matches(runs):
    # the reprojections of a lazy volume (read slab by slab) equal the in-memory ones
    for rel in ("02_intermediate/raw_reprojections.h5",
                "02_intermediate/limited_projection_reprojections.h5"):
        whole, streamed = load_h5(runs["in_memory"] / rel), load_h5(runs["streamed"] / rel)
        np.testing.assert_allclose(streamed.data, whole.data, rtol=0,
                                   atol=2e-5 * float(whole.data.max()))
        np.testing.assert_allclose(streamed.angles_deg, whole.angles_deg)
        assert streamed.metadata["center_offset_nm"] == pytest.approx(
            whole.metadata["center_offset_nm"])
    # the streamed enhancement (frame slabs) equals the in-memory one, written row-chunked
    for rel in ENHANCED.values():
        whole, streamed = load_h5(runs["in_memory"] / rel), load_h5(runs["streamed"] / rel)
        assert streamed.data.shape == whole.data.shape and streamed.units == whole.units
        np.testing.assert_allclose(streamed.data, whole.data, rtol=0,
                                   atol=2e-5 * float(whole.data.max()))
        assert streamed.metadata["enhancement"].keys() == whole.metadata["enhancement"].keys()
        with h5py.File(runs["streamed"] / rel) as f:
            assert f["exchange/data"].compression is None and f["exchange/data"].chunks[1] == 1
        with h5py.File(runs["in_memory"] / rel) as f:
            assert f["exchange/data"].compression == "gzip"
    enhanced = load_h5(runs["streamed"] / VOLUMES["enhanced_volume"])
    raw = load_h5(runs["streamed"] / VOLUMES["raw_volume"])
    assert enhanced.voxel_size_nm == pytest.approx(raw.voxel_size_nm / 4)
    assert enhanced.data.shape[1:] == tuple(4 * s for s in raw.data.shape[1:])


def test_figures_and_tiffs_come_from_the_lazy_volumes(runs):
    for volume in ("raw_volume", "enhanced_volume", "limited_projection_volume"):
        tif = f"07_model_output/tiff/{volume}_Zn_K.tif"
        whole = tifffile.imread(runs["in_memory"] / tif)
        streamed = tifffile.imread(runs["streamed"] / tif)
        np.testing.assert_allclose(streamed, whole, rtol=0, atol=2e-5 * float(whole.max()))
        assert (runs["streamed"] / "08_reporting" / "tomography" / f"{volume}_Zn_K.png").is_file()


def test_scratch_files_were_moved_not_left_behind(runs):
    assert runs["scratch"].is_dir()  # the streamed path used it
    assert list(runs["scratch"].rglob("*")) == []  # every volume moved, every folder removed
