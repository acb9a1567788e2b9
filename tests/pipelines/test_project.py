"""The Kedro project as a user meets it: registry, typed parameters, a tiny end-to-end run."""

from __future__ import annotations

from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from xrf_sr_kedro.pipeline_registry import STAGES


def _session(root: Path, env: str = "tiny") -> KedroSession:
    bootstrap_project(root)
    return KedroSession.create(project_path=root, env=env)


def test_registry_has_the_six_pipelines_and_default(project_copy):
    bootstrap_project(project_copy)
    from kedro.framework.project import pipelines

    names = set(pipelines)
    assert set(STAGES) | {"__default__", "full"} <= names
    full_nodes = {n.name for n in pipelines["full"].nodes}
    for stage in STAGES:
        assert {n.name for n in pipelines[stage].nodes} <= full_nodes
    # `kedro run` fine-tunes the shipped network: everything but the training of stage 1
    # and its training set (fine-tuning makes that set only when fine_tuning.data asks)
    default_nodes = {n.name for n in pipelines["__default__"].nodes}
    stage_1 = {"pretrain_dual_branch_network", "make_application_training_pairs"}
    assert default_nodes == full_nodes - stage_1 | {"use_shipped_pretrained_network"}
    assert "application_training_pairs" not in pipelines["__default__"].all_outputs()
    assert "shipped_pretrained_model" in pipelines["__default__"].inputs()
    assert "shipped_pretrained_model" not in pipelines["full"].all_inputs()
    # the evaluation's extra chains run with the evaluation, never in a tomography-only run
    assert "split_even_more_angles.reconstruct_enhanced" in {n.name for n in pipelines["evaluation"].nodes}
    assert not any(n.name.startswith(("split_", "pretrained_more_angles", "fine_tuned_more_angles")) for n in pipelines["tomography"].nodes)


def test_default_run_with_an_unshipped_preset_stops_naming_the_full_pipeline(project_copy):
    """`kedro run --env tiny`: the shipped network is 'small', so one line says what to run."""
    with _session(project_copy) as session:
        with pytest.raises(ValueError) as info:
            session.run(node_names=["use_shipped_pretrained_network"])
    message = str(info.value)
    assert "pretrained_small_x4.pt" in message and "'tiny'" in message
    assert "`kedro run --pipeline full`" in message and "\n" not in message
    assert not (project_copy / "data" / "06_models" / "pretrained_model.pt").exists()


def _env_with(root: Path, parameters: dict) -> str:
    """A config environment holding only ``parameters`` on top of conf/base."""
    env = root / "conf" / "override"
    env.mkdir()
    (env / "parameters.yml").write_text(yaml.safe_dump(parameters))
    return "override"


def test_mistyped_parameter_stops_the_run_naming_it(project_copy):
    env = _env_with(project_copy, {"simulation": {"sample": {"size_vox": "big"}}})
    with _session(project_copy, env) as session:
        with pytest.raises(Exception) as info:
            session.run(pipeline_names=["simulation"])
    message = str(info.value)
    assert "simulation.sample" in message
    assert "size_vox" in message


def test_unknown_parameter_key_is_rejected(project_copy):
    env = _env_with(project_copy, {"simulation": {"scan": {"step_size": 4}}})
    with _session(project_copy, env) as session:
        with pytest.raises(Exception) as info:
            session.run(pipeline_names=["simulation"])
    assert "simulation.scan" in str(info.value) and "step_size" in str(info.value)


@pytest.mark.slow
def test_tiny_end_to_end_run_writes_every_output(project_copy):
    with _session(project_copy) as session:  # the tiny preset is not shipped: pretrain it
        session.run(pipeline_names=["full"])
    data = project_copy / "data"
    with h5py.File(data / "01_raw" / "simulated_xrf_projections.h5") as f:
        assert f["exchange/theta"].shape == (13,)
    with h5py.File(data / "07_model_output" / "enhanced_volume.h5") as f:
        assert f.attrs["voxel_size_nm"] == pytest.approx(7.5)
    results = pd.read_csv(data / "08_reporting" / "results.csv")
    assert list(results.columns[:10]) == [
        "experiment", "method", "dims", "fsc_split_half_nm", "fsc_vs_truth_nm", "fsc_vs_truth_axial_nm",
        "fsc_vs_truth_equatorial_nm", "finest_resolved_pair_nm", "psnr_db", "ssim",
    ]
    two_d = results[results.dims == "2D"]
    assert list(two_d.method) == [
        "raw", "bicubic", "richardson_lucy", "tv_deconvolution", "pretrained", "fine_tuned", "selected", "selected_refined",
    ]
    three_d = results[results.dims == "3D"]
    more_angles = three_d[three_d.experiment.str.contains("-> 20 reprojections")]
    assert list(more_angles.method) == [
        "raw", "raw_best_iterations", "bicubic_reprojections", "enhanced_measured", "tv_deconvolution", "pretrained",
        "fine_tuned", "selected",
    ]
    assert list(three_d.method) == [*more_angles.method, "selected"]
    # independent split halves for every experiment's own row (raw, 270 and half projections)
    own = three_d[three_d.method.isin(["raw", "selected"])]
    assert own.fsc_split_half_nm.notna().all() and len(own) == 3
    assert three_d[~three_d.index.isin(own.index)].fsc_split_half_nm.isna().all()
    assert (data / "08_reporting" / "report.html").stat().st_size > 10_000
    assert (project_copy / "mlflow.db").exists()
