"""The recipes of docs/real_data.md, copied verbatim into a project copy's conf/local/.

Each test takes a YAML block from the docs (marked ``<!-- recipe: NAME -->``), writes
it to ``conf/local/``, and loads or runs through a KedroSession: the user changes
only ``conf/local/``, never code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOC = PROJECT_ROOT / "docs" / "real_data.md"


def recipe(name: str) -> dict:
    """The YAML block after ``<!-- recipe: name -->`` in docs/real_data.md."""
    match = re.search(
        rf"<!-- recipe: {re.escape(name)} -->\s*```yaml\n(.*?)```", DOC.read_text(), re.S
    )
    assert match, f"docs/real_data.md has no recipe block {name!r}"
    return yaml.safe_load(match.group(1))


def deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def write_local(project: Path, catalog: dict | None = None, parameters: dict | None = None):
    local = project / "conf" / "local"
    if catalog is not None:
        (local / "catalog.yml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    if parameters is not None:
        (local / "parameters.yml").write_text(yaml.safe_dump(parameters, sort_keys=False))


def session(project: Path, env: str | None = None) -> KedroSession:
    bootstrap_project(project)
    return KedroSession.create(project_path=project, env=env)


@pytest.fixture
def project(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The project copy as the working directory, as when a user runs ``kedro`` there.

    kedro-mlflow resolves ``sqlite:///mlflow.db`` against the working directory, and
    TiffMapsDataset's ``folder`` / ``filepaths`` are relative to it.  The tracking
    store is pinned to the copy with an absolute URI in ``conf/local/mlflow.yml``.
    """
    monkeypatch.chdir(project_copy)
    # An absolute tracking URI: MLflow caches its SQL store by URI string, so two
    # projects' "sqlite:///mlflow.db" in one test process would share one database.
    (project_copy / "conf" / "local" / "mlflow.yml").write_text(yaml.safe_dump({"server": {
        "mlflow_tracking_uri": f"sqlite:///{project_copy / 'mlflow.db'}",
        "mlflow_registry_uri": None, "credentials": None}}))
    yield project_copy


# ------------------------------------------------------------------- 1. HXN TIFF maps
def test_hxn_maps_through_the_enhancement_pipeline(project, tiny_checkpoint, shared_data):
    from mlflow import MlflowClient

    from xrf_sr_kedro.datasets import XRFHDF5Dataset

    # the docs' relative path ../shared/data/hxn_xrf_maps, seen from the project copy
    (project.parent / "shared").symlink_to(shared_data.parent, target_is_directory=True)
    tiny_checkpoint(project / "data" / "06_models" / "fine_tuned_model.pt")
    write_local(project, catalog=recipe("hxn-catalog"))

    with session(project) as s:
        s.run(pipeline_names=["enhancement"])

    out = project / "data" / "07_model_output" / "hxn_enhanced_maps.h5"
    enhanced = XRFHDF5Dataset(filepath=str(out)).load()
    assert enhanced.elements == ("Fe_K", "Cr_K", "S_K", "P_K", "Si_K")
    assert enhanced.data.shape == (5, 1, 640, 640)  # 160 x 160 maps, 4x
    assert enhanced.pixel_size_nm == pytest.approx(150.0 / 4)
    info = enhanced.metadata["enhancement"]
    assert info["input_pixel_size_nm"] == pytest.approx(150.0)
    assert np.asarray(info["normalisation"]["hi"]).shape == (5, 1)
    assert np.isfinite(enhanced.data).all() and (enhanced.data >= 0).all()
    # the unit docs/real_data.md states, kept through the HDF5 file
    assert enhanced.units == "fitted counts per fine pixel (37.5 x 37.5 nm)"
    assert info["fine_pixels_per_measured_pixel"] == 16

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    residual = [r.data.metrics["enhancement.consistency_relative_l2_overall"] for r in runs
                if "enhancement.consistency_relative_l2_overall" in r.data.metrics]
    assert len(residual) == 1 and np.isfinite(residual[0])
    figures = list((project / "data" / "08_reporting" / "enhancement").glob("Fe_K*"))
    assert figures
    assert info["checkpoint"]["path"].endswith("fine_tuned_model.pt")
    assert info["checkpoint"]["preset"] == "tiny"
    assert info["checkpoint"]["training_data"] == "test: untrained tiny network"


def test_hxn_environment_ships_the_documented_lines():
    shipped = yaml.safe_load((PROJECT_ROOT / "conf" / "hxn" / "catalog.yml").read_text())
    assert shipped == recipe("hxn-catalog")


# -------------------------------------------------------------------- 2. PyXRF series
def test_pyxrf_files_one_per_angle(project):
    from xrf_sr_kedro.io.pyxrf import write_pyxrf_like

    folder = project / "data" / "01_raw" / "pyxrf"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    # file names in another order than the angles: frames are sorted by param_theta
    angles_mdeg = {"scan2D_1001.h5": 30000.0, "scan2D_1002.h5": -30000.0, "scan2D_1003.h5": 0.0}
    zn = {}
    for name, theta in angles_mdeg.items():
        zn[theta] = rng.uniform(1, 10, (12, 16)).astype(np.float32)
        write_pyxrf_like(folder / name, {"Zn_K": zn[theta], "Mn_K": 2 * zn[theta]},
                         step_um=0.1, theta_mdeg=theta)
    write_local(project, catalog=recipe("pyxrf-catalog"))

    with session(project) as s:
        stack = s.load_context().catalog.load("raw_xrf")
    assert stack.elements == ("Zn_K",)
    np.testing.assert_allclose(stack.angles_deg, [-30.0, 0.0, 30.0])
    assert stack.pixel_size_nm == pytest.approx(100.0)
    np.testing.assert_allclose(stack.data[0, 0], zn[-30000.0])
    np.testing.assert_allclose(stack.data[0, 2], zn[30000.0])


# --------------------------------------------------------------------- 3. TIFF by file
def test_tiff_maps_named_file_by_file(project):
    import tifffile

    folder = project / "data" / "01_raw" / "my_maps"
    folder.mkdir(parents=True)
    maps = {e: np.full((20, 24), i + 1.0, np.float32) for i, e in enumerate(["Fe_K", "Cr_K"])}
    for element, image in maps.items():
        tifffile.imwrite(folder / f"SUM_maps_XRF_{element}.tiff", image)
    write_local(project, catalog=recipe("tiff-filepaths-catalog"))

    with session(project) as s:
        stack = s.load_context().catalog.load("raw_xrf")
    assert stack.elements == ("Fe_K", "Cr_K")
    assert stack.data.shape == (2, 1, 20, 24)
    assert stack.pixel_size_nm == pytest.approx(100.0)
    assert stack.data[1].max() == pytest.approx(2.0)


# -------------------------------------------------------------------------- 4. probe
def _probe_modes(n_modes: int = 3, size_px: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[:size_px, :size_px] - size_px / 2
    modes = [np.exp(-(xx**2 + yy**2) / (2 * (2.0 + k) ** 2)) * np.exp(1j * 0.1 * k * xx)
             for k in range(n_modes)]
    return np.stack(modes).astype(np.complex64)


def test_ptychography_probe_npy(project):
    modes = _probe_modes()
    path = project / "data" / "01_raw" / "ptycho_probe_modes.npy"
    np.save(path, modes)
    write_local(project, catalog=recipe("probe-npy-catalog"))

    with session(project) as s:
        probe = s.load_context().catalog.load("probe_intensity")
    assert probe.pixel_size_nm == pytest.approx(7.5)
    assert probe.intensity.sum() == pytest.approx(1.0, rel=1e-5)
    assert probe.metadata["n_modes"] == 3
    # resampled from 8.9 nm to 7.5 nm pixels: the probe spans more pixels
    width_in = (np.abs(modes) ** 2).sum(0).max(0).astype(bool).sum()
    assert probe.intensity.shape[0] >= 32 * 8.9 / 7.5 - 2 or width_in > 0


def test_ptychography_probe_h5_with_key(project):
    import h5py

    path = project / "data" / "01_raw" / "ptycho_probe.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("reconstruction/probe", data=_probe_modes(2))
        ds.attrs["pixel_size_nm"] = 8.9
    write_local(project, catalog=recipe("probe-h5-catalog"))

    with session(project) as s:
        probe = s.load_context().catalog.load("probe_intensity")
    assert probe.pixel_size_nm == pytest.approx(7.5)
    assert probe.metadata["n_modes"] == 2
    assert probe.intensity.sum() == pytest.approx(1.0, rel=1e-5)


# ------------------------------------------------------------------------- 5. DIV2K
def test_div2k_folder_makes_pretraining_pairs(project):
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    folder = project / "data" / "01_raw" / "DIV2K" / "DIV2K_train_HR"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(4):
        rgb = gaussian_filter(rng.uniform(0, 255, (260, 300, 3)), (3, 3, 0))
        Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(folder / f"{801 + i:04d}.png")
    small = {"simulation": {"training_images": {"n_validation_images": 1},
                            "pairs": {"lr_patch_px": 16, "patches_per_image": 2}}}
    write_local(project, catalog=recipe("div2k-catalog"),
                parameters=deep_merge(recipe("div2k-parameters"), small))

    nodes = ["collect_natural_images", "make_pretraining_pairs", "make_pretraining_validation_pairs"]
    with session(project) as s:
        s.run(pipeline_names=["simulation"], node_names=nodes)
        catalog = s.load_context().catalog
        train, val = catalog.load("pretraining_pairs"), catalog.load("pretraining_validation_pairs")
    # 4 DIV2K images, no procedural textures: 3 for training, 1 held out, 2 patches each
    assert len(train) == 6 and len(val) == 2
    assert train.lr.shape[1:] == (1, 16, 16) and train.hr.shape[1:] == (1, 64, 64)
