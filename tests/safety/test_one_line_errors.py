"""Issue 14, items 4, 5 and 7: bad input stops with one clear line, and the advice fits.

The command-line tests run ``kedro`` in a project copy (tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from kedro.framework.project import find_pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from xrf_sr_kedro.hooks import MissingUpstreamHook, MissingUpstreamOutputError
from xrf_sr_kedro.pipelines._params import check_top_level_keys

KEDRO = str(Path(sys.executable).parent / "kedro")
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}


def _kedro(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([KEDRO, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=300)


def _zero_probe_env(root: Path) -> Path:
    probe = root / "data" / "01_raw" / "zero_probe.npy"
    np.save(probe, np.zeros((5, 5)))
    (root / "conf" / "tiny" / "catalog.yml").write_text(
        "probe_intensity:\n  type: xrf_sr_kedro.datasets.ProbeDataset\n"
        f"  filepath: {probe}\n  pixel_size_nm: 7.5\n"
    )
    return probe


def test_a_bad_input_prints_one_line_naming_the_dataset(project_copy):
    probe = _zero_probe_env(project_copy)
    done = _kedro(["run", "--env", "tiny", "--pipeline", "simulation"], project_copy)
    assert done.returncode == 1
    first = done.stderr.splitlines()[:3]
    assert any("probe_intensity" in line and "zero everywhere" in line and str(probe) in line
               for line in first), done.stderr
    assert "Traceback" not in done.stderr and "╭" not in done.stderr
    log = project_copy / "logs" / "last_error.log"
    assert str(log) in done.stderr
    assert "Traceback" in log.read_text()


def test_verbose_keeps_the_traceback(project_copy):
    _zero_probe_env(project_copy)
    done = _kedro(["run", "--env", "tiny", "--pipeline", "simulation", "--verbose"], project_copy)
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "zero everywhere" in out and ("Traceback" in out or "╭" in out)


def test_run_from_a_subdirectory_of_a_path_with_spaces(tmp_path, make_project_copy):
    """Relative catalog paths mean the same from a subdirectory; spaces are fine."""
    root = make_project_copy(tmp_path / "my beamtime" / "xrf project")
    sub = root / "notebooks"
    sub.mkdir()
    done = _kedro(["run", "--env", "tiny", "--to-outputs", "truth_volume"], sub)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (root / "data" / "01_raw" / "truth_volume.h5").is_file()
    assert not (sub / "data").exists()


def _missing_message(root: Path, env: str, pipeline_name: str, monkeypatch) -> str:
    monkeypatch.chdir(root)
    bootstrap_project(root)
    with KedroSession.create(project_path=root, env=env) as session:
        catalog = session.load_context().catalog
        pipeline = find_pipelines(pipelines_to_find=[pipeline_name])[pipeline_name]
        with pytest.raises(MissingUpstreamOutputError) as info:
            MissingUpstreamHook().before_pipeline_run({"env": env}, pipeline, catalog)
    return str(info.value)


def test_a_typo_in_the_users_path_names_the_file_not_the_simulation(project_copy, monkeypatch):
    (project_copy / "conf" / "tiny" / "catalog.yml").write_text(
        "raw_xrf:\n  type: xrf_sr_kedro.datasets.XRFHDF5Dataset\n"
        "  filepath: /beamtime/scna_0042.h5\n"
    )
    message = _missing_message(project_copy, "tiny", "tomography", monkeypatch)
    line = next(li for li in message.splitlines() if "raw_xrf" in li)
    assert "/beamtime/scna_0042.h5: not found" in line
    assert "simulation" not in line and "conf/tiny/catalog.yml" in line


def test_a_tiff_folder_lacking_an_element_names_the_element(project_copy, monkeypatch):
    folder = project_copy.parent / "maps"
    folder.mkdir()
    tifffile.imwrite(folder / "Fe_K.tif", np.ones((8, 8), np.float32))
    (project_copy / "conf" / "tiny" / "catalog.yml").write_text(
        "raw_xrf:\n  type: xrf_sr_kedro.datasets.TiffMapsDataset\n"
        f"  folder: {folder}\n  elements: [Fe_K, Cr_K]\n  pixel_size_nm: 150.0\n"
    )
    message = _missing_message(project_copy, "tiny", "tomography", monkeypatch)
    line = next(li for li in message.splitlines() if "raw_xrf" in li)
    assert "no TIFF for element 'Cr_K'" in line and "simulation" not in line


def test_the_projects_own_simulated_stack_still_advises_the_simulation(project_copy, monkeypatch):
    message = _missing_message(project_copy, "tiny", "tomography", monkeypatch)
    assert "run `kedro run --pipeline simulation --env tiny` first" in message


def test_a_misspelled_top_level_parameter_key_is_refused(project_copy, monkeypatch):
    with pytest.raises(ValueError, match="'enhancment'.*did you mean 'enhancement'"):
        check_top_level_keys({"enhancment": {}}, ("enhancement", "tomography"))
    check_top_level_keys({"enhancement": {}}, ("enhancement", "tomography"))
    (project_copy / "conf" / "tiny" / "parameters_typo.yml").write_text(
        "enhancment:\n  engine:\n    tile_px: 64\n"
    )
    monkeypatch.chdir(project_copy)
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="tiny") as session:
        with pytest.raises(Exception, match="did you mean 'enhancement'"):
            session.load_context()
