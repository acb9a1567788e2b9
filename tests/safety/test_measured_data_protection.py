"""Issue 14, item 1: a user's measured file is never an output and never overwritten."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from xrf_sr_kedro.datasets import TorchCheckpointDataset, XRFHDF5Dataset
from xrf_sr_kedro.io.provenance import ProtectedDataError, written_by_project
from xrf_sr_kedro.pipeline_registry import SIMULATED_STAND_INS
from xrf_sr_kedro.types import XRFStack

MEASURED = tuple(SIMULATED_STAND_INS)


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def write_measured_file(path: Path, n_angles: int = 13, size: int = 16) -> Path:
    """A plain Data Exchange file as a beamline writes it (no project attributes)."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = rng.poisson(50, (n_angles, size, size)).astype(np.float32)
        f["/exchange/theta"] = np.linspace(0, 180, n_angles, endpoint=False)
    return path


def _stack() -> XRFStack:
    return XRFStack(data=np.ones((1, 2, 4, 4), np.float32), pixel_size_nm=100.0,
                    elements=("Fe_K",), angles_deg=np.array([0.0, 90.0]))


def test_read_only_dataset_refuses_to_save_and_keeps_the_file(tmp_path):
    measured = write_measured_file(tmp_path / "scan.h5")
    before = _sha1(measured)
    ds = XRFHDF5Dataset(filepath=str(measured), read_only=True,
                        load_args={"pixel_size_nm": 100.0, "elements": ["Fe_K"]})
    assert ds.load().data.shape == (1, 13, 16, 16)
    with pytest.raises(Exception, match="is read-only"):
        ds.save(_stack())
    assert _sha1(measured) == before


def test_shipped_pretrained_network_is_read_only():
    """The network shipped in data/01_raw/embedded is read like measured data: never written."""
    shipped = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "embedded" / "pretrained_small_x4.pt"
    before = _sha1(shipped)
    dataset = TorchCheckpointDataset(filepath=str(shipped), read_only=True)
    checkpoint = dataset.load()
    with pytest.raises(Exception, match="is read-only"):
        dataset.save(checkpoint)
    assert _sha1(shipped) == before


def test_a_file_the_project_did_not_write_is_never_overwritten(tmp_path):
    measured = write_measured_file(tmp_path / "scan.h5")
    before = _sha1(measured)
    with pytest.raises(Exception, match="refusing to overwrite a file xrf_sr_kedro did not write") as info:
        XRFHDF5Dataset(filepath=str(measured)).save(_stack())
    assert isinstance(info.value.__cause__ or info.value, ProtectedDataError)
    assert _sha1(measured) == before
    assert not list(tmp_path.glob(".scan.h5.*.tmp"))


def test_the_project_may_replace_its_own_files(tmp_path):
    ds = XRFHDF5Dataset(filepath=str(tmp_path / "own.h5"))
    ds.save(_stack())
    assert written_by_project(tmp_path / "own.h5")
    ds.save(_stack())  # a rerun overwrites its own output
    assert ds.load().data.shape == (1, 2, 4, 4)


def test_no_pipeline_writes_a_measured_name():
    from kedro.framework.project import find_pipelines

    from xrf_sr_kedro.pipeline_registry import STAGES, register_pipelines

    bootstrap_project(Path(__file__).resolve().parents[2])
    stages = find_pipelines(pipelines_to_find=list(STAGES))
    for name, pipe in {**stages, **register_pipelines()}.items():
        assert not set(MEASURED) & pipe.all_outputs(), name
    default = register_pipelines()["__default__"]
    # the full run feeds the stages the simulated stacks, never the measured names
    assert not set(MEASURED) & default.all_inputs()
    assert set(SIMULATED_STAND_INS.values()) <= default.all_outputs()


def test_plain_kedro_run_refuses_user_data_before_any_work(project_copy):
    """`kedro run` / `make run` with raw_xrf in conf/local: one line, file untouched."""
    measured = write_measured_file(project_copy.parent / "beamtime" / "scan.h5")
    before = _sha1(measured)
    (project_copy / "conf" / "local" / "catalog.yml").write_text(
        "raw_xrf:\n"
        "  type: xrf_sr_kedro.datasets.XRFHDF5Dataset\n"
        f"  filepath: {measured}\n"
        "  load_args: {pixel_size_nm: 100.0, elements: [Fe_K]}\n"
    )
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    done = subprocess.run([str(Path(sys.executable).parent / "kedro"), "run"],
                          cwd=project_copy, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    first_lines = "\n".join(done.stderr.splitlines()[:6])
    assert "raw_xrf is your measured data" in first_lines and str(measured) in first_lines
    assert "`kedro run --pipeline enhancement`" in first_lines
    assert "Traceback" not in done.stderr
    assert _sha1(measured) == before
    # refused before any node ran: nothing simulated
    assert not list((project_copy / "data" / "01_raw").glob("*.h5"))


def test_simulation_with_user_data_configured_leaves_it_untouched(project_copy, monkeypatch):
    """The pipeline that overwrote all three measured files now writes only its own."""
    measured = {name: write_measured_file(project_copy.parent / "beamtime" / f"{name}.h5")
                for name in MEASURED}
    before = {name: _sha1(p) for name, p in measured.items()}
    (project_copy / "conf" / "tiny" / "catalog.yml").write_text("".join(
        f"{name}:\n  type: xrf_sr_kedro.datasets.XRFHDF5Dataset\n  filepath: {path}\n"
        for name, path in measured.items()
    ))
    monkeypatch.chdir(project_copy)
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="tiny") as session:
        session.run(pipeline_names=["simulation"], to_outputs=list(SIMULATED_STAND_INS.values()))
    assert {name: _sha1(p) for name, p in measured.items()} == before
    simulated = project_copy / "data" / "01_raw" / "simulated_xrf_projections.h5"
    assert written_by_project(simulated)


def test_a_run_that_would_write_a_read_only_dataset_is_refused_before_any_node(tmp_path):
    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline, node

    from xrf_sr_kedro.guards import MeasuredDataGuardHook, MeasuredDataRefusedError

    measured = write_measured_file(tmp_path / "scan.h5")
    catalog = DataCatalog({"raw_xrf": XRFHDF5Dataset(filepath=str(measured), read_only=True)})
    ran = []
    pipe = Pipeline([node(lambda: ran.append(1), None, "raw_xrf", name="overwrite")])
    with pytest.raises(MeasuredDataRefusedError, match=r"raw_xrf \(.*scan.h5\) is read-only"):
        MeasuredDataGuardHook().before_pipeline_run({}, pipe, catalog)
    assert not ran
