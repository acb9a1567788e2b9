"""The real-data environment ``conf/real_like`` from files alone (issue 16, "Done when").

A simulated real-like measurement (two-element phantom, 20 px centre offset, 2 px rms
random shifts in both axes, a 30 % I0 drift with jitter, Mn/Fe spectra whose lines
overlap, 36 angles) is written as per-angle spectra files into a project copy; ``kedro
run --env real_like`` then reads them through ``SpectraDataset``, prepares (centre,
alignment) and reconstructs.  Checked against the known truth: the centre, the
shifts, the I0 correction, the raw volume's error relative to a reconstruction of
the same measurement simulated perfectly aligned, and (with a tiny network) that the
enhanced volume sits where the raw one does.
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
from scipy import ndimage

from xrf_sr_kedro.datasets import SpectraDataset, XRFHDF5Dataset
from xrf_sr_kedro.metrics.image import scaled_relative_error
from xrf_sr_kedro.physics.dose import SHOWN_MIN_COUNTS, estimate_dose
from xrf_sr_kedro.physics.real_like import simulate_real_like, write_real_like_files
from xrf_sr_kedro.tomo.align import rigid_components
from xrf_sr_kedro.tomo.recon import reconstruct_stack

N_DET, N_ROWS, OFFSET_PX, SHIFT_RMS_PX = 96, 16, 20.0, 2.0


def _com_yx(vol: np.ndarray) -> np.ndarray:
    """Centre of mass in the slice plane (y, x), px, of the voxels above 20 % of the max."""
    v = np.where(vol > 0.2 * vol.max(), vol, 0)
    return np.array(ndimage.center_of_mass(v))[1:] + 0.5 - np.array(v.shape[1:]) / 2


def write_bicubic_checkpoint(path: Path) -> None:
    """A ``tiny`` network whose learned path is zero: bicubic 4x upsampling, exactly.

    The untrained tiny network of ``tests/conftest.py`` draws a striped background
    whose centre of mass says nothing about geometry; this one keeps the project's
    checkpoint layout, engine and normalisation while its output is predictable, so
    the test checks where the chain places the enhanced volume.
    """
    from dataclasses import replace

    import torch

    from xrf_sr_kedro.io.checkpoint import FORMAT_VERSION, config_as_dict, save_checkpoint
    from xrf_sr_kedro.models.dual_branch import build_model, config_from_name

    torch.manual_seed(0)
    config = replace(config_from_name("tiny"), global_residual="bicubic")
    model = build_model(config)
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.zero_()
    save_checkpoint(path, {
        "format_version": FORMAT_VERSION, "config": config_as_dict(config), "preset": "tiny",
        "model_state": model.state_dict(), "optimizer_state": {}, "scheduler_state": {},
        "scaler_state": None, "epoch": 1, "metrics": {}, "history": {}, "train_config": {},
        "rng_state": {}, "training_data": "test: bicubic tiny network", "parent": None,
    })


def _read_env_stack(project: Path):
    """The measurement as the env's ``raw_xrf`` entry reads it."""
    entry = yaml.safe_load((project / "conf" / "real_like" / "catalog.yml").read_text())["raw_xrf"]
    entry.pop("type"), entry.pop("metadata")
    entry["filepath"] = str(project / entry["filepath"])
    return SpectraDataset(**entry).load()


def _run(project: Path, pipeline: str, runtime_params: dict | None = None, **kw) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="real_like",
                             runtime_params=runtime_params) as session:
        session.run(pipeline_names=[pipeline], **kw)


@pytest.fixture(scope="module")
def measured(tmp_path_factory, make_project_copy) -> Iterator[tuple[Path, object]]:
    """A project copy whose data/01_raw/real_like holds the measurement, and the truth."""
    root = tmp_path_factory.mktemp("real_like")
    project = make_project_copy(root / "project")
    m = simulate_real_like(n_det=N_DET, n_rows=N_ROWS, n_angles=36,
                           center_offset_px=OFFSET_PX, shift_rms_px=SHIFT_RMS_PX)
    write_real_like_files(m, project / "data" / "01_raw" / "real_like")
    write_real_like_files(m, root / "aligned", perfectly_aligned=True)
    (project / "conf" / "local" / "mlflow.yml").write_text(yaml.safe_dump({"server": {
        "mlflow_tracking_uri": f"sqlite:///{project / 'mlflow.db'}",
        "mlflow_registry_uri": None, "credentials": None}}))
    yield project, m, root / "aligned"


@pytest.fixture(scope="module")
def raw_run(measured, tmp_path_factory):
    import os

    project, m, aligned = measured
    cwd = os.getcwd()
    os.chdir(project)
    try:
        _run(project, "real_data_raw")
    finally:
        os.chdir(cwd)
    return measured


def test_centre_shifts_and_i0_are_found_from_files_alone(raw_run):
    project, m, _ = raw_run
    prepared = XRFHDF5Dataset(
        filepath=str(project / "data" / "02_intermediate" / "prepared_xrf_projections.h5")
    ).load()
    md = prepared.metadata
    # the centre, found and recorded with its method
    assert abs(md["center_offset_px"] - OFFSET_PX) < 0.5
    assert md["center_method"]
    # the shifts: applied = -displacement, compared on the part an alignment can see
    shifts = np.asarray(md["alignment"]["shifts_px"])
    assert shifts.shape == (36, 2)
    err = shifts + m.shifts_px
    err[:, 0] -= err[:, 0].mean()
    err[:, 1] -= rigid_components(err[:, 1], prepared.angles_deg)
    assert np.sqrt((err**2).sum(axis=1).mean()) < 0.5
    assert np.sqrt((m.shifts_px**2).sum(axis=1).mean()) > 2.0  # there was something to find
    # I0: recorded, and the per-angle totals no longer follow the 30 % drift
    assert md["i0_normalised"] and md["i0_scaler"] == "US_IC"
    i0 = np.asarray(md["i0_per_frame_mean"]) / md["i0_mean"]
    assert np.corrcoef(i0, m.i0)[0, 1] > 0.99
    # the maps as the env's reader gives them: per-angle totals follow the drift-free counts
    read = _read_env_stack(project)
    ratio = read.data.sum(axis=(2, 3)) / (m.line_counts / m.i0[:, None, None]).sum(axis=(2, 3))
    spread = ratio.std(axis=1) / ratio.mean(axis=1)
    uncorrected = ratio * m.i0  # what the maps would be without the I0 normalisation
    assert (uncorrected.std(axis=1) / uncorrected.mean(axis=1)).min() > 0.05
    assert spread.max() < 0.03  # Poisson noise and clipped fit values: about 0.015
    # figures of the preparation, and the user's files untouched (read-only reader)
    figures = {p.name for p in (project / "data" / "08_reporting" / "preparation").iterdir()}
    assert figures == {"trial_centres.png", "shifts_per_angle.png", "sinogram_before_after.png"}


def test_report_names_the_centre_the_alignment_i0_and_the_low_count_warning(raw_run):
    project, m, _ = raw_run
    data = project / "data"
    reporting = data / "08_reporting"
    text = (reporting / "real_data_report.md").read_text(encoding="utf-8")
    md = XRFHDF5Dataset(filepath=str(data / "02_intermediate" / "prepared_xrf_projections.h5")
                        ).load().metadata
    assert f"**{md['center_offset_px']:+.2f} px**" in text
    assert md["center_method"] in text
    # the figures it links are the ones the preparation wrote
    links = set(re.findall(r"\]\((preparation/[^)]+\.png)\)", text))
    assert links == {"preparation/trial_centres.png", "preparation/shifts_per_angle.png",
                     "preparation/sinogram_before_after.png"}
    assert all((reporting / link).is_file() for link in links)
    shifts = np.asarray(md["alignment"]["shifts_px"])
    assert f"shifts {np.sqrt((shifts**2).sum(axis=1).mean()):.2f} px rms" in text
    assert "scaler **US_IC**" in text and "NOT normalised" not in text
    assert "36 projections (0 to 175 degrees)" in text and "Mn_K, Fe_K" in text
    # the dose: fitted maps from 400-count peaks hold few noise-equivalent counts; below
    # the measured threshold, so each element is warned about
    stack = _read_env_stack(project)
    for k, element in enumerate(stack.elements):
        dose = estimate_dose(stack.data[k], stack.units).signal_counts_per_pixel
        assert dose < SHOWN_MIN_COUNTS
        assert f"Low-count warning ({element})**: dose {dose:.3g} counts/pixel" in text
    assert "| raw volume (raw_volume) | 2 x 16 x 96 x 96 | 100 nm voxels |" in text
    assert not list(reporting.glob(".real_data_report.md.*"))  # written atomically


def test_raw_volume_error_is_within_10_percent_of_perfectly_aligned_data(raw_run):
    project, m, aligned = raw_run
    data = project / "data"
    raw = XRFHDF5Dataset(filepath=str(data / "07_model_output" / "raw_volume.h5")).load()
    prepared = XRFHDF5Dataset(
        filepath=str(data / "02_intermediate" / "prepared_xrf_projections.h5")
    ).load()
    # the reconstruction took the centre the preparation found (the parameter is 0)
    assert raw.metadata["center_offset_px"] == pytest.approx(prepared.metadata["center_offset_px"])
    recon = yaml.safe_load((project / "conf" / "real_like" / "parameters.yml").read_text())
    settings = {**recon["tomography"]["recon"], "center_offset_px": OFFSET_PX}
    reference = SpectraDataset(filepath=str(aligned / "scan_*.h5"), elements=["Mn_K", "Fe_K"],
                               i0_scaler="US_IC").load()
    perfect = reconstruct_stack(reference, **settings)
    assert raw.data.shape == perfect.data.shape == m.truth.shape
    ratio = scaled_relative_error(raw.data, m.truth) / scaled_relative_error(perfect.data, m.truth)
    assert ratio < 1.10


def test_enhanced_volume_overlaps_the_raw_one(raw_run):
    import os

    project, m, _ = raw_run
    write_bicubic_checkpoint(project / "data" / "06_models" / "fine_tuned_model.pt")
    cwd = os.getcwd()
    os.chdir(project)
    try:
        # the more-angles chain only (the limited-projection experiment is not needed here)
        # and Fe_K at 36 reprojection angles, to keep the 4x reconstruction to ~30 s
        _run(project, "real_data", to_outputs=["enhanced_volume", "real_data_report"], runtime_params={
            "tomography": {"recon": {"elements": ["Fe_K"]}, "reprojection": {"n_angles": 36}}})
    finally:
        os.chdir(cwd)
    out = project / "data" / "07_model_output"
    raw = XRFHDF5Dataset(filepath=str(out / "raw_volume.h5")).load()
    enhanced = XRFHDF5Dataset(filepath=str(out / "enhanced_volume.h5")).load()
    scale = raw.voxel_size_nm / enhanced.voxel_size_nm
    assert scale == pytest.approx(4.0)
    assert enhanced.metadata["center_offset_px"] == pytest.approx(
        4 * raw.metadata["center_offset_px"], abs=1e-6
    )
    assert enhanced.elements == raw.elements == ("Fe_K",)  # runtime parameters merged
    for e in raw.elements:
        k, j = raw.elements.index(e), enhanced.elements.index(e)
        shift = _com_yx(enhanced.data[j]) / scale - _com_yx(raw.data[k])
        assert np.abs(shift).max() < 0.25, (e, shift)
    # the report of the enhanced run: the consistency residual against the Poisson level
    text = (project / "data" / "08_reporting" / "real_data_report.md").read_text(encoding="utf-8")
    found = re.search(r"relative L2 residual\s+\*\*([0-9.]+)\*\*; the Poisson level of the "
                      r"measurement's dose is ([0-9.]+)", text)
    assert found, text
    residual, poisson = float(found[1]), float(found[2])
    assert 0 < residual < 1 and 0 < poisson < 1
    assert "enhanced volume (enhanced_volume)" in text and "(Fe_K)" in text
