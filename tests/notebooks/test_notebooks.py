"""Both notebooks execute top to bottom on tiny settings, in a project copy.

The copy gets the raw scan of a tiny run (``kedro run --env tiny --to-outputs
raw_xrf``) and an untrained ``tiny`` network as ``pretrained_model.pt`` (the
fine-tuned model falls back to it).  The kernel is the interpreter running the tests
(a temporary kernelspec), so the notebooks see the project's environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "xrf-sr-kedro-test"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, make_project_copy, tiny_checkpoint) -> Path:
    """A project copy with a tiny raw scan, a tiny network and the notebooks."""
    base = tmp_path_factory.mktemp("notebooks")
    root = make_project_copy(base / "project", notebooks=True)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "run", "--env", "tiny", "--to-outputs", "raw_xrf"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tiny_checkpoint(root / "data" / "06_models" / "pretrained_model.pt")
    return root


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kernelspec that starts this interpreter (found first through JUPYTER_PATH)."""
    spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "xrf-sr-kedro (tests)", "language": "python",
    }))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(spec_dir.parents[1]), old]))
    yield KERNEL
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


def _execute(path: Path, kernel_name: str, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("XRF_SR_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def test_notebooks_are_committed_without_outputs():
    assert len(NOTEBOOKS) == 2
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), path.name
        assert "parameters" in code[0].metadata.get("tags", []), path.name


def test_raw_scan_to_enhanced_tomogram(project, kernel_name, monkeypatch):
    nb = _execute(project / "notebooks" / "01_raw_scan_to_enhanced_tomogram.ipynb", kernel_name, monkeypatch)
    text = _text(nb)
    assert "raw_xrf: (2, 13, 16, 16)" in text          # tiny: 2 elements, 13 angles
    assert "enhanced: (1, 13, 64, 64), 7.5 nm pixels" in text
    assert "relative L2 residual" in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 3   # before/after, orthogonal slices, side by side


def test_bring_your_own_beamline_data(project, kernel_name, monkeypatch, shared_data):
    # ../shared/data as the notebook sees it from the project copy
    (project.parent / "shared").symlink_to(shared_data.parent, target_is_directory=True)
    nb = _execute(project / "notebooks" / "02_bring_your_own_beamline_data.ipynb", kernel_name, monkeypatch)
    text = _text(nb)
    assert "maps: (2, 1, 160, 160)" in text
    assert "fine-tuning the pretrained network (preset tiny)" in text
    assert "enhanced: (2, 1, 640, 640) at 37.5 nm" in text
    assert "Fe_K: relative L2 residual" in text
    assert (project / "data" / "07_model_output" / "notebook_enhanced_maps.h5").is_file()
    assert (project / "data" / "06_models" / "notebook_fine_tuning" / "last.pt").is_file()
